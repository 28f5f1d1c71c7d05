// The SQLite store's side of the journal hand-off (Store.insertJournalRange, and insertJournaledUsage):
// the writer thread reads the batch's byte range of the journal file (or takes its text), decodes it
// with the journal's own reader and writes exactly its rows, roll-ups included, all or none; with writes
// on the gateway's thread (inline, :memory:) a range is read and decoded there, and its text's rows are written.

import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { journalText } from '../../core/wire/usage-journal-text.ts';
import type { Store, UsageRecord } from '../../core/spec/store.ts';
import { sqliteStoreDriver } from '../../plugins/store-sqlite/index.ts';
import { usageValues, usageValuesFromJournalText } from '../../plugins/store-sqlite/usage-values.ts';
import { usageRecord } from '../helpers/usage-record.ts';

const opened: Array<{ store: Store; directory: string }> = [];

afterEach(() => {
  for (const { store, directory } of opened.splice(0)) {
    store.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

async function openStore(env: Record<string, string> = {}): Promise<Store> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-journal-text-store-'));
  const store = await sqliteStoreDriver.open(`file:${join(directory, 'keyway.db')}`, { dataDirectory: directory, env });
  opened.push({ store, directory });
  await store.migrate([{ plugin: 'test', migrations: [{ id: '0001', statements: ['CREATE TABLE batches (first INTEGER, last INTEGER, rows INTEGER)'] }] }]);
  store.setUsageRollups?.([
    { plugin: 'test', statements: ['INSERT INTO batches SELECT ?1, ?2, (SELECT COUNT(*) FROM usage_records WHERE id BETWEEN ?1 AND ?2)'] },
  ]);
  return store;
}

function rows(prefix: string, count: number): UsageRecord[] {
  return Array.from({ length: count }, (_, index) =>
    usageRecord({
      requestId: `${prefix}_${index}`,
      accountId: 'acc_text',
      projectTag: index % 3 === 0 ? 'projet é 🚀' : null,
      costUsd: index % 4 === 0 ? null : index / 1000,
      inputTokens: index === 0 ? Number.MAX_SAFE_INTEGER : index,
      cacheWrite1hTokens: index,
      usageEstimated: index % 2 === 0,
      createdAt: new Date(Date.UTC(2025, 5, 1, 0, 0, 0, index)).toISOString(),
    }),
  );
}

async function requestIds(store: Store): Promise<string[]> {
  return (await store.listUsage('acc_text')).map((row) => row.requestId).sort();
}

test('the writer thread writes the rows the text holds, exactly, and runs the roll-ups once for the batch', async () => {
  const store = await openStore();
  const batch = rows('text', 70);
  await store.insertJournaledUsage?.(batch, journalText(batch));
  const stored = (await store.listUsage('acc_text')).sort((left, right) => left.createdAt.localeCompare(right.createdAt));
  const compared = ({ requestId, projectTag, costUsd, inputTokens, cacheWrite1hTokens, usageEstimated }: UsageRecord) => ({
    requestId,
    projectTag,
    costUsd,
    inputTokens,
    cacheWrite1hTokens,
    usageEstimated,
  });
  expect(stored.map(compared)).toEqual(batch.map(compared));
  expect(await store.query('SELECT rows FROM batches')).toEqual([{ rows: 70 }]);
});

test('on the writer thread the text is what is written (it is decoded there, not the rows sent)', async () => {
  const store = await openStore();
  await store.insertJournaledUsage?.(rows('sent', 3), journalText(rows('journaled', 3)));
  expect(await requestIds(store)).toEqual(['journaled_0', 'journaled_1', 'journaled_2']);
});

test('text that does not hold the batch (a row short, a damaged line) is refused and writes nothing, roll-ups included', async () => {
  const store = await openStore();
  const batch = rows('text', 4);
  await expect(store.insertJournaledUsage?.(batch, journalText(batch.slice(0, 3)))).rejects.toThrow('holds 3 rows, not the 4');
  const damaged = journalText(batch).replace('"text_2"', '"text_2');
  await expect(store.insertJournaledUsage?.(batch, damaged)).rejects.toThrow('not JSON (line 3)');
  expect(await requestIds(store)).toEqual([]);
  expect(await store.query('SELECT COUNT(*) AS count FROM batches')).toEqual([{ count: 0 }]);
});

test('with writes on the gateway thread (KEYWAY_USAGE_WRITER=inline) the rows are written and the text is not decoded', async () => {
  const store = await openStore({ KEYWAY_USAGE_WRITER: 'inline' });
  await store.insertJournaledUsage?.(rows('sent', 2), 'not journal text');
  expect(await requestIds(store)).toEqual(['sent_0', 'sent_1']);
});

/** The store holds exactly the rows `rows(prefix, count)` makes, written as one batch (its roll-up ran once). */
async function expectOneBatchOf(store: Store, prefix: string, count: number): Promise<void> {
  expect(await requestIds(store)).toEqual(
    rows(prefix, count)
      .map((one) => one.requestId)
      .sort(),
  );
  expect(await store.query('SELECT rows FROM batches')).toEqual([{ rows: count }]);
}

/** A journal file holding `before`, `batch` and `after` in turn; the byte range of `batch`. */
function journalFile(before: UsageRecord[], batch: UsageRecord[], after: UsageRecord[]): { path: string; start: number; end: number } {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-journal-range-'));
  opened.push({ store: { close: () => undefined } as Store, directory });
  const path = join(directory, 'segment.jsonl');
  const head = Buffer.from(journalText(before));
  const middle = Buffer.from(journalText(batch));
  writeFileSync(path, Buffer.concat([head, middle, Buffer.from(journalText(after))]));
  return { path, start: head.length, end: head.length + middle.length };
}

// 40 rows: one decoding slice; 700: slices of 256, 256 and 188 (the writer yields its core between
// them), with multi-byte text in every slice and before the range (its offsets are bytes, not characters).
test.each([40, 700])(
  'the writer thread reads a batch of %d rows where the journal wrote it: exactly the rows of its byte range, roll-ups once',
  async (count) => {
    const store = await openStore();
    const range = journalFile(rows('before', 5), rows('range', count), rows('after', 3));
    await store.insertJournalRange?.(count, range);
    await expectOneBatchOf(store, 'range', count);
  },
);

// The journal's in-flight marks sit between the rows (core/accounting/in-flight-marks.ts): an open mark
// before a turn's rows, a close mark after each row, a seal mark at the end; the decoding skips them,
// in every slice, and counts only rows against the batch.
test.each([40, 700])('a range of %d rows with in-flight marks between them is decoded to exactly its rows', async (count) => {
  const store = await openStore();
  const directory = mkdtempSync(join(tmpdir(), 'keyway-journal-range-marks-'));
  opened.push({ store: { close: () => undefined } as Store, directory });
  const path = join(directory, 'segment.jsonl');
  const open = (id: number) =>
    `${JSON.stringify(['o', id, `req_${id}`, 'acc_text', 'gk', null, null, 'chat', 'openai', 'gpt-4o', null, 'pk', true, false, 1748736000000, 12, 1, null])}\n`;
  let text = open(0);
  for (const [index, row] of rows('marked', count).entries()) text += `${index % 7 === 0 ? open(index + 1) : ''}${journalText([row])}["c",${index}]\n`;
  const head = Buffer.from(journalText(rows('before', 2)));
  const middle = Buffer.from(`${text}["s"]\n`);
  writeFileSync(path, Buffer.concat([head, middle]));
  await store.insertJournalRange?.(count, { path, start: head.length, end: head.length + middle.length });
  await expectOneBatchOf(store, 'marked', count);
});

test('a range that does not hold its batch (short, past the end of the file, not a range) is refused and writes nothing', async () => {
  const store = await openStore();
  const range = journalFile([], rows('range', 4), []);
  await expect(store.insertJournalRange?.(5, range)).rejects.toThrow('holds 4 rows, not the 5');
  await expect(store.insertJournalRange?.(4, { ...range, end: range.end + 10 })).rejects.toThrow(`not the ${range.end + 10} of its batch`);
  await expect(store.insertJournalRange?.(4, { ...range, start: range.end, end: range.start })).rejects.toThrow('is not a byte range');
  expect(await requestIds(store)).toEqual([]);
  expect(await store.query('SELECT COUNT(*) AS count FROM batches')).toEqual([{ count: 0 }]);
});

test('with writes on the gateway thread the range is read there: its rows written, a range short of its count refused', async () => {
  const store = await openStore({ KEYWAY_USAGE_WRITER: 'inline' });
  const range = journalFile(rows('before', 1), rows('range', 3), rows('after', 1));
  await expect(store.insertJournalRange?.(4, range)).rejects.toThrow('holds 3 rows, not the 4');
  await store.insertJournalRange?.(3, range);
  expect(await requestIds(store)).toEqual(['range_0', 'range_1', 'range_2']);
});

test('the values decoded from journal text are the values written from the rows', () => {
  const batch = rows('values', 9);
  expect(usageValuesFromJournalText(journalText(batch), 9)).toEqual(batch.map(usageValues));
});

test('every field of a row reaches its column from the line as from the row, and older lines decode to the same values', () => {
  const full = usageRecord({
    requestId: 'req_full',
    teamId: 'team_1',
    projectTag: 'tag',
    providerKeyId: 'pk_1',
    byok: true,
    status: 502,
    errorCode: 'upstream_error',
    inputTokens: 11,
    outputTokens: 12,
    cachedInputTokens: 13,
    cacheWriteTokens: 14,
    cacheWrite1hTokens: 15,
    reasoningTokens: 16,
    costUsd: 0.25,
    latencyMs: 17.5,
    streamed: true,
    fallbackAttempts: 2,
    usageEstimated: true,
    audited: true,
    clientIp: '203.0.113.9',
    actorRole: 'member',
    requestSha256: 'ab'.repeat(32),
  });
  const unpriced = usageRecord({ requestId: 'req_unpriced', costUsd: null, byok: false });
  // The forms an older journal wrote: a row object, and a version 1 line (no audit fields).
  const objectLine = `${JSON.stringify(unpriced)}\n`;
  const versionOne = `${JSON.stringify([1, ...(JSON.parse(journalText([unpriced]).trim()) as unknown[]).slice(1, -4)])}\n`;
  expect(usageValuesFromJournalText(journalText([full, unpriced]) + objectLine + versionOne, 4)).toEqual([full, unpriced, unpriced, unpriced].map(usageValues));
  expect(() => usageValuesFromJournalText(`${JSON.stringify([2, ...Array(29).fill(null)])}\n`, 1)).toThrow('line 1 is not a usage row');
});

test('across slices a short batch or a damaged line is refused with its line in the batch, and nothing is written', async () => {
  const store = await openStore();
  const batch = rows('big', 600);
  await expect(store.insertJournaledUsage?.(rows('sent', 601), journalText(batch))).rejects.toThrow('holds 600 rows, not the 601');
  const damaged = journalText(batch).replace('"big_300"', '"big_300');
  await expect(store.insertJournaledUsage?.(batch, damaged)).rejects.toThrow('not JSON (line 301)');
  expect(await requestIds(store)).toEqual([]);
  expect(await store.query('SELECT COUNT(*) AS count FROM batches')).toEqual([{ count: 0 }]);
});
