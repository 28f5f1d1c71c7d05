// The usage journal: every row on disk before its response ends, replayed once after a crash, never
// booked twice, and the in-memory buffer bounded while the store is down.

import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOURNAL_FIELDS, journalLine, rowFromLine } from '../../core/accounting/journal-line.ts';
import { type OwnerCheck, readProcessStat } from '../../core/accounting/journal-owner.ts';
import { UsageJournal } from '../../core/accounting/usage-journal.ts';
import { UsageQueue, type UsageWriter } from '../../core/accounting/usage-queue.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import type { UsageKey, UsageRecord } from '../../core/spec/store.ts';
import { usageRecord } from '../helpers/usage-record.ts';

function row(index: number, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return usageRecord({
    requestId: `req_${index}`,
    accountId: 'acc_1',
    gatewayKeyId: 'gk_1',
    providerKeyId: 'pk_1',
    inputTokens: 10 + index,
    outputTokens: 5,
    costUsd: 0.0001,
    fallbackAttempts: 1,
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, index)).toISOString(),
    usageEstimated: false,
    ...overrides,
  });
}

/** A store's usage half: commits batches, can be down, and can fail after committing (a lost reply). */
class FakeStore implements UsageWriter {
  rows: UsageRecord[] = [];
  down = false;
  failAfterCommit = false;
  batches = 0;

  async insertUsage(batch: readonly UsageRecord[]): Promise<void> {
    if (this.down) throw new Error('store is down');
    this.batches += 1;
    this.rows.push(...batch);
    if (this.failAfterCommit) {
      this.failAfterCommit = false;
      throw new Error('connection lost after commit');
    }
  }

  async findUsageKeys(keys: readonly UsageKey[]): Promise<UsageKey[]> {
    const wanted = new Set(keys.map((key) => key.requestId));
    return this.rows.filter((candidate) => wanted.has(candidate.requestId)).map(({ requestId, accountId, createdAt }) => ({ requestId, accountId, createdAt }));
  }
}

let directory: string;
let logLines: string[];
let logger: Logger;
const queues: UsageQueue[] = [];

beforeEach(() => {
  directory = join(mkdtempSync(join(tmpdir(), 'keyway-journal-')), 'usage-journal');
  logLines = [];
  logger = createLogger('debug', { write: (line: string) => void logLines.push(line) } as never);
});

afterEach(async () => {
  for (const queue of queues.splice(0)) await queue.close().catch(() => undefined);
  rmSync(join(directory, '..'), { recursive: true, force: true });
});

interface QueueOptions {
  bufferMax?: number;
  batchSize?: number;
  ownerIsAlive?: OwnerCheck;
  rescanIntervalMs?: number;
}

function openQueue(store: UsageWriter, options: QueueOptions = {}): { queue: UsageQueue; journal: UsageJournal } {
  const journal = UsageJournal.open(directory, logger, { ownerIsAlive: options.ownerIsAlive });
  const queue = new UsageQueue(store, logger, {
    flushIntervalMs: 3_600_000,
    batchSize: options.batchSize ?? 1000,
    bufferMax: options.bufferMax,
    journal,
    rescanIntervalMs: options.rescanIntervalMs,
  });
  queues.push(queue);
  return { queue, journal };
}

/** What a SIGKILL leaves: the files, and no process that owns them. */
function crash(journal: UsageJournal): void {
  journal.close();
}

const journalFiles = (): string[] => (existsSync(directory) ? readdirSync(directory).filter((name) => name.endsWith('.jsonl')) : []);
const journalLines = (): string[] =>
  journalFiles().flatMap((name) =>
    // A chunk is its lines, then zero bytes up to its fixed size.
    readFileSync(join(directory, name), 'utf8')
      .replace(/\0+$/, '')
      .split('\n')
      .filter((line) => line.length > 0),
  );

describe('append', () => {
  test("a turn's first row is appended at once, the rest together at the turn's end; journaled() settles once they are on disk", async () => {
    const { queue } = openQueue(new FakeStore());
    expect(queue.journaled()).toBeUndefined();
    queue.enqueue(row(1));
    // Alone in its turn (low load), it waits for nothing.
    expect(journalLines()).toEqual([journalLine(row(1))]);
    expect(queue.journaled()).toBeUndefined();
    queue.enqueue(row(2));
    queue.enqueue(row(3));
    const written = queue.journaled();
    expect(written).toBeDefined();
    // Still this turn: the later rows are not written yet, and count as pending.
    expect(journalLines()).toEqual([journalLine(row(1))]);
    expect(queue.pending).toBe(3);
    await written;
    expect(journalLines()).toEqual([journalLine(row(1)), journalLine(row(2)), journalLine(row(3))]);
    expect(queue.journaled()).toBeUndefined();
    // A new turn: its first row is written at once again.
    queue.enqueue(row(4));
    expect(journalLines().map((line) => rowFromLine(JSON.parse(line))?.requestId)).toEqual(['req_1', 'req_2', 'req_3', 'req_4']);
    expect(queue.pending).toBe(4);
  });

  test('a turn that books a whole batch is written at once, and the batch flushed', async () => {
    const store = new FakeStore();
    const { queue } = openQueue(store, { batchSize: 4 });
    for (let index = 0; index < 4; index++) queue.enqueue(row(index));
    expect(queue.journaled()).toBeUndefined();
    await queue.flush();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_0', 'req_1', 'req_2', 'req_3']);
  });

  test('a flush writes the rows and deletes their segment', async () => {
    const store = new FakeStore();
    const { queue } = openQueue(store);
    for (let index = 0; index < 5; index++) queue.enqueue(row(index));
    await queue.flush();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_0', 'req_1', 'req_2', 'req_3', 'req_4']);
    expect(journalFiles()).toEqual([]);
    expect(queue.pending).toBe(0);
    queue.enqueue(row(5));
    await queue.journaled();
    expect(journalFiles()).toHaveLength(1);
    await queue.flush();
    expect(journalFiles()).toEqual([]);
    expect(store.rows).toHaveLength(6);
  });
});

/** A store that reads each batch where the journal wrote it (Store.insertJournalRange), as the SQLite writer thread does. */
class RangeStore extends FakeStore {
  ranges: Array<{ start: number; end: number; lines: string[]; batch: string[] }> = [];

  /** Held until released: the writer falling behind, as a busy store thread does. */
  gate: Promise<void> | undefined;
  rowWrites = 0;

  override async insertUsage(batch: readonly UsageRecord[]): Promise<void> {
    this.rowWrites += 1;
    await super.insertUsage(batch);
  }

  async insertJournalRange(count: number, range: { path: string; start: number; end: number }): Promise<void> {
    await this.gate;
    if (this.down) throw new Error('store is down');
    const text = readFileSync(range.path).subarray(range.start, range.end).toString('utf8');
    // Rows only: the journal's in-flight marks between them are not rows.
    const batch = text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => rowFromLine(JSON.parse(line)))
      .filter((one): one is UsageRecord => one !== undefined);
    if (batch.length !== count) throw new Error(`the range holds ${batch.length} rows, not the ${count} of its batch`);
    const ids = batch.map((one) => one.requestId);
    this.ranges.push({ start: range.start, end: range.end, lines: ids, batch: ids });
    this.batches += 1;
    this.rows.push(...batch);
  }
}

describe('a store that reads the journal file', () => {
  test("a batch is the byte range of its rows' lines, whatever their characters; the next segment starts its own file", async () => {
    const store = new RangeStore();
    const { queue } = openQueue(store);
    const booked = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, offset) => row(from + offset, { projectTag: (from + offset) % 2 === 0 ? 'projet é 🚀' : null }));
    // Turns of 2, 2 and 1 rows, some with multi-byte text, then a flush; then another turn and flush.
    const first = booked(0, 5);
    for (const turn of [first.slice(0, 2), first.slice(2, 4), first.slice(4)]) {
      for (const one of turn) queue.enqueue(one);
      await queue.journaled();
    }
    await queue.flush();
    const second = booked(5, 7);
    for (const one of second) queue.enqueue(one);
    await queue.flush();
    const bytesOf = (rows: UsageRecord[]) => rows.reduce((sum, one) => sum + Buffer.byteLength(`${journalLine(one)}\n`), 0);
    const ids = (rows: UsageRecord[]) => rows.map((one) => one.requestId);
    expect(store.ranges).toEqual([
      { start: 0, end: bytesOf(first), lines: ids(first), batch: ids(first) },
      { start: 0, end: bytesOf(second), lines: ids(second), batch: ids(second) },
    ]);
    expect(bytesOf(first)).toBeGreaterThan(first.map((one) => `${journalLine(one)}\n`).join('').length);
    expect(journalFiles()).toEqual([]);
  });

  test('after an append failed (the file may hold a cut line) the segment is written from its rows, and no row is lost', async () => {
    const store = new RangeStore();
    const { queue, journal } = openQueue(store);
    queue.enqueue(row(1));
    const append = journal.append.bind(journal);
    let failures = 0;
    journal.append = () => {
      failures += 1;
      journal.append = append;
      throw new Error('no space left on device');
    };
    queue.enqueue(row(2));
    queue.enqueue(row(3));
    await queue.journaled();
    expect(failures).toBe(1);
    queue.enqueue(row(4));
    await queue.flush();
    expect(store.ranges).toEqual([]);
    expect(store.rows.map((written) => written.requestId).sort()).toEqual(['req_1', 'req_2', 'req_3', 'req_4']);
  });

  test('segments past the buffer (the writer behind) are handed over as their whole file: nothing is read back here, none lost or doubled', async () => {
    const store = new RangeStore();
    let release = (): void => undefined;
    store.gate = new Promise((resolve) => {
      release = resolve;
    });
    const { queue, journal } = openQueue(store, { bufferMax: 10, batchSize: 25 });
    let readBack = 0;
    const readSegment = journal.readSegment.bind(journal);
    journal.readSegment = (file) => {
      readBack += 1;
      return readSegment(file);
    };
    // Turns of 5 rows: the first segment's write waits at the gate while 195 more rows come in.
    for (let index = 0; index < 200; index += 5) {
      for (let offset = 0; offset < 5; offset++) queue.enqueue(row(index + offset));
      await queue.journaled();
      expect(queue.buffered).toBeLessThanOrEqual(10 + 5);
    }
    expect(logLines.some((line) => line.includes('the usage buffer is full'))).toBe(true);
    release();
    await queue.flush();
    expect(queue.pending).toBe(0);
    expect(readBack).toBe(0);
    expect(store.rowWrites).toBe(0);
    expect(store.rows.map((written) => written.requestId)).toEqual(Array.from({ length: 200 }, (_, index) => `req_${index}`));
    expect(store.ranges.every((range) => range.start === 0 || range.lines.length > 0)).toBe(true);
    expect(journalFiles()).toEqual([]);
  });
});

describe('line format', () => {
  test('a line is the version, then every field in JOURNAL_FIELDS order, and reads back as the same row', () => {
    const full = row(7, {
      teamId: 'team_1',
      projectTag: 'p',
      errorCode: 'x',
      cacheWrite1hTokens: 3,
      reasoningTokens: 4,
      costUsd: null,
      streamed: true,
      usageEstimated: true,
      audited: true,
      clientIp: '203.0.113.7',
      actorRole: 'member',
      requestSha256: 'a'.repeat(64),
    });
    const minimal = row(8);
    delete minimal.usageEstimated;
    for (const record of [full, minimal]) {
      const parsed = JSON.parse(journalLine(record)) as unknown[];
      expect(parsed).toEqual([2, ...JOURNAL_FIELDS.map((field) => record[field] ?? null)]);
      expect(rowFromLine(parsed)).toEqual(record);
    }
    expect(Object.keys(rowFromLine(JSON.parse(journalLine(minimal))) as UsageRecord)).not.toContain('usageEstimated');
  });

  test('a version 1 line (before the audit fields) still reads, as the row without them', () => {
    const record = row(9, { usageEstimated: true });
    const line = JSON.parse(journalLine({ ...record, audited: true, clientIp: '203.0.113.7', actorRole: 'member', requestSha256: null })) as unknown[];
    const versionOne = [1, ...line.slice(1, -4)];
    expect(versionOne.length).toBe(JOURNAL_FIELDS.length - 3);
    expect(rowFromLine(versionOne)).toEqual(record);
    expect(rowFromLine([1, ...line.slice(1)])).toBeUndefined();
    expect(rowFromLine([2, ...line.slice(1, -4)])).toBeUndefined();
  });

  test('lines written as JSON objects (older releases) are still read; another version or a short array is not', () => {
    expect(rowFromLine(JSON.parse(JSON.stringify(row(1))))).toEqual(row(1));
    const line = JSON.parse(journalLine(row(2))) as unknown[];
    expect(rowFromLine([3, ...line.slice(1)])).toBeUndefined();
    expect(rowFromLine(line.slice(0, -1))).toBeUndefined();
    expect(rowFromLine(null)).toBeUndefined();
  });
});

describe('replay', () => {
  test('rows of a crashed process are written at the next start, once', async () => {
    const before = openQueue(new FakeStore());
    for (let index = 0; index < 20; index++) before.queue.enqueue(row(index));
    // A SIGKILL after the rows' answers went out: those waited for the turn's write.
    await before.queue.journaled();
    crash(before.journal);

    const store = new FakeStore();
    const after = openQueue(store);
    await after.queue.recover();
    expect(store.rows.map((written) => written.requestId)).toEqual(Array.from({ length: 20 }, (_, index) => `req_${index}`));
    expect(store.rows[3]).toEqual(row(3));
    expect(journalFiles()).toEqual([]);
    // Once: a second replay finds nothing.
    await after.queue.recover();
    expect(store.rows).toHaveLength(20);
  });

  test('rows committed before the crash are not booked again (the segment was not deleted yet)', async () => {
    const store = new FakeStore();
    const before = openQueue(store);
    for (let index = 0; index < 6; index++) before.queue.enqueue(row(index));
    await before.queue.journaled();
    const [name] = journalFiles();
    const saved = readFileSync(join(directory, name as string));
    await before.queue.flush();
    // The crash came between the commit and the deletion: the file is still there.
    writeFileSync(join(directory, name as string), saved);
    before.queue.enqueue(row(6));
    await before.queue.journaled();
    crash(before.journal);

    const after = openQueue(store);
    await after.queue.recover();
    expect(store.rows.map((written) => written.requestId).sort()).toEqual(['req_0', 'req_1', 'req_2', 'req_3', 'req_4', 'req_5', 'req_6']);
    expect(journalFiles()).toEqual([]);
  });

  test('a repeated request id is a multiset: a row booked once and journaled twice is inserted once more', async () => {
    const store = new FakeStore();
    store.rows.push(row(1));
    const twin = row(1);
    writeFileSync(join(mkdirFor(directory), `${process.pid}-zzzz-000001.jsonl`), `${JSON.stringify(twin)}\n${JSON.stringify(twin)}\n`);
    const { queue } = openQueue(store);
    await queue.recover();
    expect(store.rows.filter((written) => written.requestId === 'req_1')).toHaveLength(2);
  });

  test('a replay cut short by another crash is simply replayed again', async () => {
    const store = new FakeStore();
    const lines = Array.from({ length: 10 }, (_, index) => JSON.stringify(row(index))).join('\n');
    writeFileSync(join(mkdirFor(directory), `${process.pid}-aaaa-000001.jsonl`), `${lines}\n`);
    // The first replay commits a batch of 4, then the store fails: the file stays.
    store.down = false;
    const first = openQueue(store, { batchSize: 4 });
    const insert = store.insertUsage.bind(store);
    let calls = 0;
    store.insertUsage = async (batch) => {
      calls += 1;
      if (calls === 2) throw new Error('crash in the middle of the replay');
      await insert(batch);
    };
    await first.queue.recover();
    expect(store.rows).toHaveLength(4);
    crash(first.journal);
    store.insertUsage = insert;

    const second = openQueue(store, { batchSize: 4 });
    await second.queue.recover();
    expect(store.rows.map((written) => written.requestId).sort()).toEqual(Array.from({ length: 10 }, (_, index) => `req_${index}`).sort());
  });

  test('a cut last line (power loss) is skipped, and the rest replayed', async () => {
    writeFileSync(join(mkdirFor(directory), `${process.pid}-bbbb-000001.jsonl`), `${JSON.stringify(row(1))}\n${JSON.stringify(row(2)).slice(0, 40)}`);
    const store = new FakeStore();
    const { queue } = openQueue(store);
    await queue.recover();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_1']);
    expect(logLines.some((line) => line.includes('could not be read'))).toBe(true);
  });

  test("a live process's journal is not touched", async () => {
    // pid 1 is always alive; another live runtime in this process is recognised by its instance id.
    writeFileSync(join(mkdirFor(directory), '1-cccc-000001.jsonl'), `${JSON.stringify(row(1))}\n`);
    const live = openQueue(new FakeStore());
    live.queue.enqueue(row(2));
    await live.queue.journaled();
    const store = new FakeStore();
    const { queue } = openQueue(store);
    await queue.recover();
    expect(store.rows).toEqual([]);
    expect(journalFiles()).toHaveLength(2);
  });

  test('a store that is down at start keeps the replayed rows queued; the next flush writes them', async () => {
    const before = openQueue(new FakeStore());
    for (let index = 0; index < 3; index++) before.queue.enqueue(row(index));
    await before.queue.journaled();
    crash(before.journal);
    const store = new FakeStore();
    store.down = true;
    const { queue } = openQueue(store);
    await queue.recover();
    expect(queue.pending).toBe(3);
    store.down = false;
    await queue.flush();
    expect(store.rows).toHaveLength(3);
    expect(journalFiles()).toEqual([]);
  });
});

describe('failures', () => {
  test('a write that failed after committing (a lost reply) is not booked twice on retry', async () => {
    const store = new FakeStore();
    const { queue } = openQueue(store);
    for (let index = 0; index < 4; index++) queue.enqueue(row(index));
    store.failAfterCommit = true;
    await expect(queue.flush()).rejects.toThrow('connection lost after commit');
    expect(queue.consecutiveFailures).toBe(1);
    await queue.flush();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_0', 'req_1', 'req_2', 'req_3']);
    expect(queue.consecutiveFailures).toBe(0);
  });

  test('with the store down, memory holds at most KEYWAY_USAGE_BUFFER_MAX rows; the rest wait in the journal, and none is lost', async () => {
    const store = new FakeStore();
    store.down = true;
    const { queue } = openQueue(store, { bufferMax: 10, batchSize: 25 });
    for (let index = 0; index < 200; index++) {
      queue.enqueue(row(index));
      expect(queue.buffered).toBeLessThanOrEqual(10);
      if (index % 30 === 0) await queue.flush().catch(() => undefined);
    }
    expect(queue.pending).toBe(200);
    expect(logLines.some((line) => line.includes('the usage buffer is full'))).toBe(true);
    store.down = false;
    await queue.flush();
    expect(queue.pending).toBe(0);
    expect(queue.buffered).toBe(0);
    expect(store.rows.map((written) => written.requestId)).toEqual(Array.from({ length: 200 }, (_, index) => `req_${index}`));
    expect(journalFiles()).toEqual([]);
  });

  test('rows the store would not take at shutdown stay in the journal and are written by the next start', async () => {
    const down = new FakeStore();
    down.down = true;
    const before = openQueue(down);
    for (let index = 0; index < 3; index++) before.queue.enqueue(row(index));
    await before.queue.close();
    expect(logLines.some((line) => line.includes('stay in the usage journal'))).toBe(true);
    expect(logLines.some((line) => line.includes('could not be written at shutdown'))).toBe(false);

    const store = new FakeStore();
    const after = openQueue(store);
    await after.queue.recover();
    expect(store.rows).toHaveLength(3);
  });

  test('a journal that cannot be written keeps rows in memory, and they are still written', async () => {
    const store = new FakeStore();
    const { queue } = openQueue(store);
    rmSync(directory, { recursive: true, force: true });
    queue.enqueue(row(1));
    queue.enqueue(row(2));
    await queue.journaled();
    expect(logLines.filter((line) => line.includes('could not be written; usage rows are kept in memory'))).toHaveLength(1);
    expect(queue.pending).toBe(2);
    await queue.flush();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_1', 'req_2']);
  });

  test('without a journal (benches, embedded use) the queue works in memory as before', async () => {
    const store = new FakeStore();
    const queue = new UsageQueue(store, logger, { flushIntervalMs: 3_600_000, batchSize: 1000 });
    queues.push(queue);
    queue.enqueue(row(1));
    await queue.recover();
    await queue.flush();
    expect(store.rows).toEqual([row(1)]);
  });
});

function mkdirFor(path: string): string {
  UsageJournal.open(path, logger).close();
  return path;
}

/** Lines of a journal file holding these rows. */
const linesOf = (rows: readonly UsageRecord[]): string => rows.map((one) => `${journalLine(one)}\n`).join('');

/** A process that exited and was not reaped: its parent (`sleep`) never waits for children. */
async function zombie(): Promise<{ pid: number; reap: () => Promise<void> }> {
  // dash reaps a child that already ended before it execs; so the child ends after the exec.
  const parent = Bun.spawn(['sh', '-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdin: 'ignore', stdout: 'pipe', stderr: 'ignore' });
  const reader = parent.stdout.getReader();
  const pid = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  const reap = async () => {
    parent.kill('SIGKILL');
    await parent.exited;
  };
  for (let waited = 0; readProcessStat(pid)?.state !== 'Z'; waited += 20) {
    if (waited > 5_000) {
      await reap();
      throw new Error(`process ${pid} did not become a zombie`);
    }
    await Bun.sleep(20);
  }
  return { pid, reap };
}

/** A running process that is not this one: a stand-in for a sibling worker, or for a process that got a dead writer's pid. */
function otherLiveProcess(): { pid: number; startTime: string; stop: () => Promise<void> } {
  const child = Bun.spawn(['sleep', '30'], { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
  const stat = readProcessStat(child.pid);
  if (stat === undefined) throw new Error('no /proc entry for a child just started');
  return {
    pid: child.pid,
    startTime: stat.startTime,
    stop: async () => {
      child.kill('SIGKILL');
      await child.exited;
    },
  };
}

describe.skipIf(readProcessStat('self') === undefined)('who wrote a journal (Linux /proc)', () => {
  test("this process's files carry its pid and start time", () => {
    const journal = UsageJournal.open(directory, logger);
    journal.close();
    const startTime = readProcessStat('self')?.startTime;
    expect(journal.newFile().path).toContain(`/${process.pid}.${startTime}-${journal.instance}-`);
  });

  test('a zombie (SIGKILLed, not yet reaped) is gone: its journal is replayed, in the current and the older name form', async () => {
    const { pid, reap } = await zombie();
    try {
      // kill(pid, 0) still answers for it: what the old check relied on.
      expect(() => process.kill(pid, 0)).not.toThrow();
      const startTime = readProcessStat(pid)?.startTime;
      writeFileSync(join(mkdirFor(directory), `${pid}.${startTime}-dddd-000001.jsonl`), linesOf([row(1), row(2)]));
      writeFileSync(join(directory, `${pid}-eeee-000001.jsonl`), linesOf([row(3)]));
      const store = new FakeStore();
      const { queue } = openQueue(store);
      await queue.recover();
      expect(store.rows.map((written) => written.requestId).sort()).toEqual(['req_1', 'req_2', 'req_3']);
      expect(journalFiles()).toEqual([]);
    } finally {
      await reap();
    }
  });

  test('a pid now held by a process that started at another time is not the writer: its journal is replayed; the same start time is left alone', async () => {
    const other = otherLiveProcess();
    try {
      const reused = `${other.pid}.${Number(other.startTime) - 1}-ffff-000001.jsonl`;
      const live = `${other.pid}.${other.startTime}-gggg-000001.jsonl`;
      writeFileSync(join(mkdirFor(directory), reused), linesOf([row(1)]));
      writeFileSync(join(directory, live), linesOf([row(2)]));
      const store = new FakeStore();
      const { queue } = openQueue(store);
      await queue.recover();
      expect(store.rows.map((written) => written.requestId)).toEqual(['req_1']);
      expect(journalFiles()).toEqual([live]);
    } finally {
      await other.stop();
    }
  });
});

describe('rescan while running', () => {
  /** A sibling process the test declares alive or dead (ownerIsAlive, injected). */
  const SIBLING = 4_000_001;
  const siblingFile = (sequence: number) => `${SIBLING}.777-sibl-${String(sequence).padStart(6, '0')}.jsonl`;

  function fakeOwners(): { alive: Set<number>; check: OwnerCheck } {
    const alive = new Set<number>([SIBLING]);
    return { alive, check: (pid) => alive.has(pid) };
  }

  test("a live sibling's journal is never touched; once it dies, the second rescan that finds it gone replays it, once", async () => {
    const owners = fakeOwners();
    const store = new FakeStore();
    const { queue } = openQueue(store, { ownerIsAlive: owners.check });
    await queue.recover();
    writeFileSync(join(directory, siblingFile(1)), linesOf([row(1), row(2)]));
    for (let scan = 0; scan < 3; scan++) await queue.rescan();
    expect(store.rows).toEqual([]);
    expect(journalFiles()).toEqual([siblingFile(1)]);

    // Its last rows reach the file, then it dies.
    writeFileSync(join(directory, siblingFile(1)), linesOf([row(1), row(2), row(3)]));
    owners.alive.delete(SIBLING);
    await queue.rescan();
    // Found gone once: not yet (a remote store may still be committing its last batch).
    expect(store.rows).toEqual([]);
    await queue.rescan();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_1', 'req_2', 'req_3']);
    expect(journalFiles()).toEqual([]);
    await queue.rescan();
    await queue.rescan();
    expect(store.rows).toHaveLength(3);
    expect(logLines.some((line) => line.includes('replaying the usage journal of a process that died'))).toBe(true);
  });

  test('rows the dead process committed before it died are not booked again', async () => {
    const owners = fakeOwners();
    const store = new FakeStore();
    // Its last batch reached the store; the deletion of its file did not happen.
    store.rows.push(row(1), row(2));
    owners.alive.delete(SIBLING);
    writeFileSync(join(mkdirFor(directory), siblingFile(1)), linesOf([row(1), row(2), row(3)]));
    const { queue } = openQueue(store, { ownerIsAlive: owners.check });
    await queue.rescan();
    await queue.rescan();
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_1', 'req_2', 'req_3']);
  });

  test("two workers rescanning the same folder at once replay a dead one's journal once between them", async () => {
    const owners = fakeOwners();
    const store = new FakeStore();
    const first = openQueue(store, { ownerIsAlive: owners.check });
    const second = openQueue(store, { ownerIsAlive: owners.check });
    // Each worker's own journal is live to the other (its instance is in use): written by its owner only.
    first.queue.enqueue(row(10));
    second.queue.enqueue(row(20));
    await Promise.all([first.queue.journaled(), second.queue.journaled()]);
    owners.alive.delete(SIBLING);
    writeFileSync(join(directory, siblingFile(1)), linesOf([row(1), row(2)]));
    writeFileSync(join(directory, siblingFile(2)), linesOf([row(3)]));
    for (let scan = 0; scan < 3; scan++) await Promise.all([first.queue.rescan(), second.queue.rescan()]);
    await Promise.all([first.queue.flush(), second.queue.flush()]);
    expect(store.rows.map((written) => written.requestId).sort()).toEqual(['req_1', 'req_10', 'req_2', 'req_20', 'req_3']);
    expect(journalFiles()).toEqual([]);
  });

  test('two workers that listed the same orphan both try to claim it: one gets it', () => {
    const owners = fakeOwners();
    owners.alive.delete(SIBLING);
    writeFileSync(join(mkdirFor(directory), siblingFile(1)), linesOf([row(1)]));
    const first = UsageJournal.open(directory, logger, { ownerIsAlive: owners.check });
    const second = UsageJournal.open(directory, logger, { ownerIsAlive: owners.check });
    try {
      const [listedByFirst] = first.leftovers();
      const [listedBySecond] = second.leftovers();
      expect(listedByFirst).toBe(listedBySecond as string);
      const claims = [first.claim(listedByFirst as string), second.claim(listedBySecond as string)];
      expect(claims.filter((claim) => claim !== undefined)).toHaveLength(1);
      // The claimed file is the claimer's own now, live to the other.
      expect(second.leftovers()).toEqual([]);
    } finally {
      first.close();
      second.close();
    }
  });

  test('the timer rescans on its own: an orphaned journal is written without a restart', async () => {
    const owners = fakeOwners();
    const store = new FakeStore();
    const { queue } = openQueue(store, { ownerIsAlive: owners.check, rescanIntervalMs: 20 });
    await queue.recover();
    writeFileSync(join(directory, siblingFile(1)), linesOf([row(1), row(2)]));
    await Bun.sleep(100);
    expect(store.rows).toEqual([]);
    owners.alive.delete(SIBLING);
    for (let waited = 0; store.rows.length < 2 && waited < 2_000; waited += 20) await Bun.sleep(20);
    expect(store.rows.map((written) => written.requestId)).toEqual(['req_1', 'req_2']);
    expect(journalFiles()).toEqual([]);
  });

  test('a rescan that cannot claim a file logs a warning and rejects nothing (a timer rejection would end the process)', async () => {
    const owners = fakeOwners();
    owners.alive.delete(SIBLING);
    const store = new FakeStore();
    const { queue, journal } = openQueue(store, { ownerIsAlive: owners.check });
    writeFileSync(join(directory, siblingFile(1)), linesOf([row(1)]));
    journal.claim = () => {
      throw Object.assign(new Error('EACCES: permission denied, rename'), { code: 'EACCES' });
    };
    await queue.rescan();
    await queue.rescan();
    expect(logLines.some((line) => line.includes('the usage journal rescan failed'))).toBe(true);
    expect(store.rows).toEqual([]);
  });

  test('close stops the rescans', async () => {
    const owners = fakeOwners();
    const store = new FakeStore();
    const { queue } = openQueue(store, { ownerIsAlive: owners.check, rescanIntervalMs: 10 });
    await queue.close();
    owners.alive.delete(SIBLING);
    writeFileSync(join(directory, siblingFile(1)), linesOf([row(1)]));
    await Bun.sleep(80);
    expect(store.rows).toEqual([]);
    expect(journalFiles()).toEqual([siblingFile(1)]);
  });
});
