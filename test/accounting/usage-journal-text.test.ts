// The hand-off of journal text (Store.insertJournaledUsage): a store that takes it gets each batch's
// rows as the journal wrote them, decoded to exactly those rows; the journal's guarantees hold on this
// path too (segments deleted only after commit, a retry books nothing twice, a spill loses nothing),
// and replays, spills and rows the journal could not take go through insertUsage.

import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { journalLine } from '../../core/accounting/journal-line.ts';
import { journalText, rowsFromJournalText } from '../../core/wire/usage-journal-text.ts';
import { UsageJournal } from '../../core/accounting/usage-journal.ts';
import { UsageQueue, type UsageWriter } from '../../core/accounting/usage-queue.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import type { UsageKey, UsageRecord } from '../../core/spec/store.ts';
import { usageRecord } from '../helpers/usage-record.ts';

function row(index: number, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return usageRecord({
    requestId: `req_${index}`,
    accountId: 'acc_1',
    inputTokens: 10 + index,
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, index)).toISOString(),
    ...overrides,
  });
}

/** Rows no ordinary request books: the decoder must give each back exactly. */
const UNUSUAL: readonly UsageRecord[] = [
  row(900, { costUsd: null, model: 'unpriced-model', usageEstimated: true }),
  row(901, { projectTag: 'café 日本語 🚀 עברית e\u0301 "quoted" \\ back\nslash\u2028\u2029', teamId: 'équipe' }),
  row(902, {
    inputTokens: Number.MAX_SAFE_INTEGER,
    outputTokens: 2 ** 40,
    cachedInputTokens: 2 ** 33,
    cacheWriteTokens: 2 ** 31,
    cacheWrite1hTokens: 2 ** 31 - 1,
    reasoningTokens: 10 ** 12,
    costUsd: 1e-12,
    latencyMs: 0.001,
  }),
  row(903, { provider: null, model: null, providerKeyId: null, byok: false, status: 499, errorCode: 'client_closed', streamed: true, costUsd: 0 }),
];

/** A store that takes journal text, decoding it as a writer thread does; it can be down or lose a reply. */
class TextStore implements UsageWriter {
  rows: UsageRecord[] = [];
  /** How each batch arrived, and its size. */
  calls: Array<{ path: 'text' | 'rows'; count: number; journalFilesDuringWrite: number }> = [];
  down = false;
  failAfterCommit = false;

  constructor(private readonly files: () => string[]) {}

  async insertUsage(batch: readonly UsageRecord[]): Promise<void> {
    this.commit('rows', batch);
  }

  async insertJournaledUsage(batch: readonly UsageRecord[], lines: string): Promise<void> {
    const decoded = rowsFromJournalText(lines);
    // The text and the rows are the same batch: the contract a store may rely on.
    expect(decoded).toStrictEqual(batch.map((written) => JSON.parse(JSON.stringify(written)) as UsageRecord));
    this.commit('text', decoded);
  }

  async findUsageKeys(keys: readonly UsageKey[]): Promise<UsageKey[]> {
    const wanted = new Set(keys.map((key) => key.requestId));
    return this.rows.filter((candidate) => wanted.has(candidate.requestId)).map(({ requestId, accountId, createdAt }) => ({ requestId, accountId, createdAt }));
  }

  private commit(path: 'text' | 'rows', batch: readonly UsageRecord[]): void {
    if (this.down) throw new Error('store is down');
    this.calls.push({ path, count: batch.length, journalFilesDuringWrite: this.files().length });
    this.rows.push(...batch);
    if (this.failAfterCommit) {
      this.failAfterCommit = false;
      throw new Error('connection lost after commit');
    }
  }
}

let directory: string;
let logger: Logger;
const queues: UsageQueue[] = [];

beforeEach(() => {
  directory = join(mkdtempSync(join(tmpdir(), 'keyway-journal-text-')), 'usage-journal');
  logger = createLogger('error', { write: () => undefined } as never);
});

afterEach(async () => {
  for (const queue of queues.splice(0)) await queue.close().catch(() => undefined);
  rmSync(join(directory, '..'), { recursive: true, force: true });
});

const journalFiles = (): string[] => (existsSync(directory) ? readdirSync(directory).filter((name) => name.endsWith('.jsonl')) : []);

function openQueue(options: { bufferMax?: number; batchSize?: number } = {}): { queue: UsageQueue; journal: UsageJournal; store: TextStore } {
  const store = new TextStore(journalFiles);
  const journal = UsageJournal.open(directory, logger);
  const queue = new UsageQueue(store, logger, { flushIntervalMs: 3_600_000, batchSize: options.batchSize ?? 1000, bufferMax: options.bufferMax, journal });
  queues.push(queue);
  return { queue, journal, store };
}

/** Rows booked over several event-loop turns, `perTurn` at a time. */
async function book(queue: UsageQueue, rows: readonly UsageRecord[], perTurn: number): Promise<void> {
  for (let start = 0; start < rows.length; start += perTurn) {
    for (const booked of rows.slice(start, start + perTurn)) queue.enqueue(booked);
    await queue.journaled();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('journal text', () => {
  test('journalText is the journal lines, each ended by a newline, and reads back as the same rows', () => {
    const text = journalText(UNUSUAL);
    expect(text).toBe(UNUSUAL.map((written) => `${journalLine(written)}\n`).join(''));
    expect(rowsFromJournalText(text)).toStrictEqual([...UNUSUAL]);
    expect(rowsFromJournalText('')).toEqual([]);
  });

  test('a line that is not a usage row, a cut line or a missing last newline is an error, never a dropped row', () => {
    const good = journalText([row(1)]);
    expect(() => rowsFromJournalText(`${good}{"not":"a row"}\n`)).toThrow('line 2 is not a usage row');
    expect(() => rowsFromJournalText(`${good}${good.slice(0, 40)}\n`)).toThrow('line 2');
    expect(() => rowsFromJournalText(good.slice(0, -1))).toThrow('must end with a newline');
    expect(() => rowsFromJournalText(`${good}\n`)).toThrow();
  });
});

describe('the queue hands the journal text to a store that takes it', () => {
  test('every row arrives exactly as booked, by text, and the segment is deleted only after the commit', async () => {
    const { queue, store } = openQueue();
    await book(queue, UNUSUAL, 2);
    expect(journalFiles()).toHaveLength(1);
    await queue.flush();
    expect(store.rows).toStrictEqual([...UNUSUAL]);
    expect(store.calls).toEqual([{ path: 'text', count: UNUSUAL.length, journalFilesDuringWrite: 1 }]);
    expect(journalFiles()).toEqual([]);
  });

  test('what the store got is byte for byte what the journal holds', async () => {
    const { queue, journal } = openQueue();
    let handed = '';
    const spy = queue as unknown as { writer: TextStore };
    const original = spy.writer.insertJournaledUsage.bind(spy.writer);
    spy.writer.insertJournaledUsage = async (batch, lines) => {
      handed = lines;
      const name = journalFiles()[0] as string;
      expect(readFileSync(join(journal.directory, name), 'utf8')).toBe(lines);
      await original(batch, lines);
    };
    await book(queue, UNUSUAL, 3);
    await queue.flush();
    expect(handed).toBe(journalText(UNUSUAL));
  });

  test('a segment longer than a batch goes in batches of whole turns, none over the batch size', async () => {
    const { queue, store } = openQueue({ batchSize: 10 });
    const rows = Array.from({ length: 9 }, (_, index) => row(index));
    // Booked while no flush runs and below the batch: one segment of 9, in turns of 4, 4 and 1.
    await book(queue, rows, 4);
    await queue.flush();
    expect(store.calls.map((call) => [call.path, call.count])).toEqual([['text', 9]]);
    // A segment that grew past the batch while a flush was writing: split at turn boundaries.
    const more = Array.from({ length: 14 }, (_, index) => row(100 + index));
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const original = store.insertJournaledUsage.bind(store);
    store.insertJournaledUsage = async (batch, lines) => {
      await held;
      await original(batch, lines);
    };
    queue.enqueue(row(99));
    await queue.journaled();
    const flushing = queue.flush();
    await book(queue, more, 3);
    release();
    await flushing;
    await queue.flush();
    const later = store.calls.slice(1);
    expect(later[0]).toMatchObject({ path: 'text', count: 1 });
    expect(later.length).toBeGreaterThanOrEqual(3);
    for (const call of later) {
      expect(call.path).toBe('text');
      expect(call.count).toBeLessThanOrEqual(10);
    }
    expect(store.rows.map((written) => written.requestId)).toEqual([...rows, row(99), ...more].map((written) => written.requestId));
    expect(journalFiles()).toEqual([]);
  });

  test('a text write that failed after committing is retried by rows and books nothing twice', async () => {
    const { queue, store } = openQueue();
    await book(queue, UNUSUAL, 4);
    store.failAfterCommit = true;
    await expect(queue.flush()).rejects.toThrow('connection lost after commit');
    expect(journalFiles()).toHaveLength(1);
    await queue.flush();
    expect(store.rows).toStrictEqual([...UNUSUAL]);
    expect(store.calls.map((call) => call.path)).toEqual(['text']);
    expect(journalFiles()).toEqual([]);
  });

  test('with the store down, spilled segments are read back and written by rows; none is lost, none twice', async () => {
    const { queue, store } = openQueue({ bufferMax: 10, batchSize: 25 });
    store.down = true;
    for (let index = 0; index < 120; index++) {
      queue.enqueue(row(index));
      await queue.journaled();
      if (index % 30 === 0) await queue.flush().catch(() => undefined);
    }
    store.down = false;
    await queue.flush();
    expect(store.rows.map((written) => written.requestId)).toEqual(Array.from({ length: 120 }, (_, index) => `req_${index}`));
    expect(store.calls.some((call) => call.path === 'rows')).toBe(true);
    expect(journalFiles()).toEqual([]);
  });

  test("a crashed process's journal is replayed by rows, skipping what the store holds", async () => {
    const first = openQueue();
    await book(first.queue, UNUSUAL, 4);
    first.journal.close();
    const { queue, store } = openQueue();
    store.rows.push(UNUSUAL[0] as UsageRecord);
    await queue.recover();
    expect(store.rows).toStrictEqual([...UNUSUAL]);
    expect(store.calls.map((call) => [call.path, call.count])).toEqual([['rows', UNUSUAL.length - 1]]);
  });

  test('rows the journal could not take are written by rows', async () => {
    const { queue, store } = openQueue();
    rmSync(directory, { recursive: true, force: true });
    queue.enqueue(row(1));
    await queue.journaled();
    await queue.flush();
    expect(store.calls.map((call) => call.path)).toEqual(['rows']);
    expect(store.rows).toStrictEqual([row(1)]);
  });
});
