// Requests in flight when the process dies (QA15 cluster #3): the usage journal marks each upstream
// call as it starts, without making the request wait, and a replay of a dead process's journal books
// every request it left unbooked exactly once, at Keyway's estimate, flagged, with `gateway_stopped`;
// streams at what they had delivered by their last progress mark. Replays are idempotent.

import { afterEach, beforeEach, expect, test } from 'bun:test';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Accountant } from '../../core/accounting/account.ts';
import { promptTokenBound } from '../../core/accounting/prompt-bound.ts';
import { StreamObserver } from '../../core/accounting/stream-observer.ts';
import { UsageJournal } from '../../core/accounting/usage-journal.ts';
import { UsageQueue, type UsageWriter } from '../../core/accounting/usage-queue.ts';
import { catalogFor } from '../../core/catalog/catalog.ts';
import { costOf } from '../../core/catalog/pricing.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import type { HookTable } from '../../core/registry.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { UsageKey, UsageRecord } from '../../core/spec/store.ts';
import type { RouteCandidate } from '../../core/spec/strategy.ts';
import type { Usage } from '../../core/spec/vocabulary.ts';
import { rowsFromJournalText } from '../../core/wire/usage-journal-text.ts';

/** A store's usage half that keeps what it committed. */
class FakeStore implements UsageWriter {
  rows: UsageRecord[] = [];
  down = false;

  async insertUsage(batch: readonly UsageRecord[]): Promise<void> {
    if (this.down) throw new Error('store is down');
    this.rows.push(...batch);
  }

  async findUsageKeys(keys: readonly UsageKey[]): Promise<UsageKey[]> {
    const wanted = new Set(keys.map((key) => key.requestId));
    return this.rows.filter((row) => wanted.has(row.requestId)).map(({ requestId, accountId, createdAt }) => ({ requestId, accountId, createdAt }));
  }

  countOf(requestId: string): number {
    return this.rows.filter((row) => row.requestId === requestId).length;
  }

  rowOf(requestId: string): UsageRecord {
    const row = this.rows.find((candidate) => candidate.requestId === requestId);
    if (row === undefined) throw new Error(`no row for ${requestId}`);
    return row;
  }
}

const catalog = catalogFor(
  new Map([
    ['openai', { catalogAliases: { providers: ['openai'] } }],
    ['anthropic', { catalogAliases: { providers: ['anthropic'] } }],
  ]),
);
const price = (provider: string, model: string, usage: Usage): number | undefined => costOf(catalog, provider, [model], usage);
const HOOKS: HookTable = { auth: [], keyResolve: [], route: [], call: [], account: [] };

let directory: string;
let logger: Logger;
let logLines: string[];
const queues: UsageQueue[] = [];

beforeEach(() => {
  directory = join(mkdtempSync(join(tmpdir(), 'keyway-in-flight-')), 'usage-journal');
  logLines = [];
  logger = createLogger('debug', { write: (line: string) => void logLines.push(line) } as never);
});

afterEach(async () => {
  for (const queue of queues.splice(0)) await queue.close().catch(() => undefined);
  rmSync(join(directory, '..'), { recursive: true, force: true });
});

function gateway(store: UsageWriter, options: { batchSize?: number; markIntervalMs?: number } = {}) {
  const journal = UsageJournal.open(directory, logger);
  const usage = new UsageQueue(store, logger, {
    flushIntervalMs: 3_600_000,
    batchSize: options.batchSize ?? 1000,
    journal,
    price,
    markIntervalMs: options.markIntervalMs ?? 20,
  });
  queues.push(usage);
  const accountant = new Accountant({ catalog, usage, logger, hooks: HOOKS });
  return { usage, journal, accountant };
}

/** What a SIGKILL leaves: the files, and no process that owns them (the queue is never closed). */
function crash(journal: UsageJournal, usage: UsageQueue): void {
  journal.close();
  queues.splice(queues.indexOf(usage), 1);
}

/** The next start on the same folder: replays what the dead one left. */
async function restart(store: UsageWriter): Promise<UsageQueue> {
  const usage = new UsageQueue(store, logger, { flushIntervalMs: 3_600_000, batchSize: 1000, journal: UsageJournal.open(directory, logger), price });
  queues.push(usage);
  await usage.recover();
  return usage;
}

const PROMPT = 'Summarise the attached quarterly report in three bullet points, for a board meeting.';

function requestContext(requestId: string, stream = false): RequestContext {
  return createRequestContext(
    requestId,
    new Request('http://keyway.test/v1/chat/completions'),
    { keyId: 'key_test', role: 'admin', accountId: 'acc_1', teamId: 'team_1', byokAccess: true, environment: undefined, settings: {} },
    'chat',
    () => undefined,
    { model: 'gpt-4o', stream, messages: [{ role: 'user', content: PROMPT }] },
  );
}

function candidate(provider = 'openai', model = 'gpt-4o', keyId = 'pk_1'): RouteCandidate {
  return { provider, model, key: { id: keyId, owner: 'account', provider, accountId: 'acc_1', settings: {} } as never };
}

/** The request is answered and booked (its upstream call done). */
function book(accountant: Accountant, context: RequestContext, served = candidate()): void {
  context.served = { provider: served.provider, model: served.model, keyId: served.key.id, owner: 'account' };
  accountant.account(context, {
    status: 200,
    usage: { inputTokens: 20, outputTokens: 8, totalTokens: 28, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
    finishReason: undefined,
    error: undefined,
    streamed: context.request.stream === true,
  });
}

const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** A mark tick (20 ms in these tests) has passed and the turn that writes its marks has ended. */
const nextTurn = async (): Promise<void> => {
  await Bun.sleep(30);
  await turnEnd();
};
const files = (): string[] => (existsSync(directory) ? readdirSync(directory).filter((name) => name.endsWith('.jsonl')) : []);
const lines = (): unknown[][] =>
  files().flatMap((name) =>
    readFileSync(join(directory, name), 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as unknown[]),
  );
const marks = (tag: string): unknown[][] => lines().filter((line) => line[0] === tag);

test('an upstream call is marked at the next tick, with the rows of the turn after it; nothing waits; a request booked before the tick writes no mark', async () => {
  const store = new FakeStore();
  const { accountant, usage } = gateway(store);
  const quick = requestContext('req_quick');
  accountant.opened(quick, candidate());
  await turnEnd();
  book(accountant, quick);
  // The row alone, written at once as the turn's first; its request's mark was never written.
  expect(lines().map((line) => line[0])).toEqual([2]);
  const slow = requestContext('req_slow');
  accountant.opened(slow, candidate());
  // Nothing waits for a mark, and it is not written before the tick.
  expect(usage.journaled()).toBeUndefined();
  await turnEnd();
  expect(marks('o')).toEqual([]);
  await nextTurn();
  expect(marks('o').map((mark) => mark[2])).toEqual(['req_slow']);
  expect(usage.inFlightRequests).toBe(1);
  book(accountant, slow);
  // Its close mark follows its row.
  const all = lines();
  expect(all.at(-2)?.[1]).toBe('req_slow');
  expect(all.at(-1)).toEqual(['c', marks('o')[0]?.[1]]);
  expect(usage.inFlightRequests).toBe(0);
  await usage.flush();
  expect(store.rows.map((row) => row.requestId)).toEqual(['req_quick', 'req_slow']);
});

test('SIGKILL with requests in flight: the next start books each once at its estimate, flagged gateway_stopped; the answered ones keep their own row', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store, { markIntervalMs: 20 });
  const answered = requestContext('req_answered');
  const waiting = requestContext('req_waiting');
  const streaming = requestContext('req_streaming', true);
  for (const context of [answered, waiting, streaming]) accountant.opened(context, candidate());
  await nextTurn();
  const observer = new StreamObserver();
  accountant.streaming(streaming, observer);
  for (let chunk = 0; chunk < 17; chunk++) observer.observe({ type: 'text-delta', text: 'a delivered chunk of text ' } as never);
  // The progress timer marks what the stream delivered.
  await Bun.sleep(60);
  expect(marks('p').length).toBeGreaterThan(0);
  book(accountant, answered);
  crash(journal, usage);

  await restart(store);
  expect(store.rows.map((row) => row.requestId).sort()).toEqual(['req_answered', 'req_streaming', 'req_waiting']);
  expect(store.rowOf('req_answered')).toMatchObject({ status: 200, usageEstimated: false, errorCode: null });
  const bound = promptTokenBound(waiting.request);
  const waited = store.rowOf('req_waiting');
  expect(waited).toMatchObject({
    status: 503,
    errorCode: 'gateway_stopped',
    usageEstimated: true,
    streamed: false,
    provider: 'openai',
    model: 'gpt-4o',
    providerKeyId: 'pk_1',
    byok: true,
    teamId: 'team_1',
    gatewayKeyId: 'key_test',
    inputTokens: bound,
    outputTokens: 0,
    fallbackAttempts: 1,
  });
  expect(waited.costUsd).toBe(costOf(catalog, 'openai', ['gpt-4o'], { inputTokens: bound, outputTokens: 0 } as Usage) as number);
  expect(waited.costUsd as number).toBeGreaterThan(0);
  const streamed = store.rowOf('req_streaming');
  expect(streamed).toMatchObject({ status: 503, errorCode: 'gateway_stopped', usageEstimated: true, streamed: true, inputTokens: bound });
  // What it had delivered, as a cut stream is estimated: never 0.
  expect(streamed.outputTokens).toBe(Math.ceil(observer.streamedTokens));
  expect(streamed.latencyMs).toBeGreaterThan(0);
  expect(logLines.some((line) => line.includes('"requests":2') && line.includes('booked once at its estimate'))).toBe(true);
  expect(files()).toEqual([]);
});

test('a stream whose provider stated its prompt up front is booked at that prompt, cache reads and writes included', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store, { markIntervalMs: 20 });
  const streaming = requestContext('req_stated', true);
  accountant.opened(streaming, candidate('anthropic', 'claude-3-5-haiku-20241022'));
  await nextTurn();
  const observer = new StreamObserver();
  accountant.streaming(streaming, observer);
  const prompt: Usage = { inputTokens: 1200, outputTokens: 0, totalTokens: 1200, cachedInputTokens: 1000, cacheWriteInputTokens: 100, reasoningTokens: 0 };
  observer.observe({ type: 'start', model: 'claude-3-5-haiku-20241022', promptUsage: prompt } as never);
  observer.observe({ type: 'text-delta', text: 'Hello there, here is the summary.' } as never);
  await Bun.sleep(60);
  crash(journal, usage);
  await restart(store);
  expect(store.rowOf('req_stated')).toMatchObject({
    inputTokens: 1200,
    cachedInputTokens: 1000,
    cacheWriteTokens: 100,
    outputTokens: Math.ceil(observer.streamedTokens),
    usageEstimated: true,
  });
});

test('a request still in flight when its mark was written into a segment that was then committed and deleted is carried on: booked once after a crash', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store);
  const long = requestContext('req_long');
  const ending = requestContext('req_ends_after_seal');
  accountant.opened(long, candidate());
  accountant.opened(ending, candidate());
  await nextTurn();
  for (let index = 0; index < 3; index++) {
    const other = requestContext(`req_other_${index}`);
    accountant.opened(other, candidate());
    await nextTurn();
    book(accountant, other);
    // Each flush seals the segment that holds the marks, and deletes it once its rows are in.
    await usage.flush();
  }
  expect(store.rows).toHaveLength(3);
  // Booked after the seals: its close mark goes where its open mark was carried.
  book(accountant, ending);
  await nextTurn();
  crash(journal, usage);
  await restart(store);
  expect(store.countOf('req_long')).toBe(1);
  expect(store.rowOf('req_long').errorCode).toBe('gateway_stopped');
  expect(store.countOf('req_ends_after_seal')).toBe(1);
  expect(store.rowOf('req_ends_after_seal').errorCode).toBeNull();
  expect(store.rows).toHaveLength(5);
});

test('with the store down, every sealed segment stays on disk: a request carried through all of them is booked once', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store, { batchSize: 1 });
  const long = requestContext('req_carried');
  accountant.opened(long, candidate());
  await nextTurn();
  store.down = true;
  for (let index = 0; index < 3; index++) {
    const other = requestContext(`req_queued_${index}`);
    accountant.opened(other, candidate());
    await nextTurn();
    book(accountant, other);
    await usage.flush().catch(() => undefined);
  }
  // One segment per batch, each with the open mark of the request still in flight.
  expect(files().length).toBeGreaterThanOrEqual(3);
  expect(marks('o').filter((mark) => mark[2] === 'req_carried').length).toBeGreaterThanOrEqual(3);
  crash(journal, usage);
  store.down = false;
  // A store that cannot say what it holds: only the seal marks keep the copies from being booked each.
  await restart({ insertUsage: (batch) => store.insertUsage(batch) });
  expect(store.countOf('req_carried')).toBe(1);
  expect(store.rows).toHaveLength(4);
});

test('replays are idempotent: one cut short and run again, and a final row already in the store beside its open mark, book one row each', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store);
  const inFlight = requestContext('req_in_flight');
  const done = requestContext('req_done');
  accountant.opened(inFlight, candidate());
  accountant.opened(done, candidate());
  await nextTurn();
  book(accountant, done);
  // The final row committed, its file (open mark, row, close mark) not deleted yet: kept aside here.
  const saved = files().map((name) => {
    copyFileSync(join(directory, name), join(directory, '..', name));
    return name;
  });
  await usage.flush();
  crash(journal, usage);
  for (const name of saved) copyFileSync(join(directory, '..', name), join(directory, name));
  expect(store.countOf('req_done')).toBe(1);

  await restart(store);
  expect(store.countOf('req_done')).toBe(1);
  expect(store.countOf('req_in_flight')).toBe(1);
  // The replay dies before it deletes the files: the next one finds them all in the store.
  for (const name of saved) copyFileSync(join(directory, '..', name), join(directory, name));
  await restart(store);
  expect(store.countOf('req_done')).toBe(1);
  expect(store.countOf('req_in_flight')).toBe(1);
  expect(store.rows).toHaveLength(2);
});

test('a fallback marks the request again: the estimate names the provider of the attempt under way, and counts its attempts', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store);
  const context = requestContext('req_fallback');
  accountant.opened(context, candidate('openai', 'gpt-4o', 'pk_first'));
  await nextTurn();
  context.attempts.push({ provider: 'openai', model: 'gpt-4o', keyId: 'pk_first', status: 500 } as never);
  accountant.opened(context, candidate('anthropic', 'claude-3-5-haiku-20241022', 'pk_second'));
  await nextTurn();
  crash(journal, usage);
  await restart(store);
  expect(store.rows).toHaveLength(1);
  expect(store.rowOf('req_fallback')).toMatchObject({
    provider: 'anthropic',
    model: 'claude-3-5-haiku-20241022',
    providerKeyId: 'pk_second',
    fallbackAttempts: 2,
  });
});

test("a live process's marks are never booked by its own flushes, and a clean shutdown leaves nothing behind", async () => {
  const store = new FakeStore();
  const { accountant, usage } = gateway(store);
  const contexts = Array.from({ length: 5 }, (_, index) => requestContext(`req_${index}`));
  for (const context of contexts) accountant.opened(context, candidate());
  await nextTurn();
  for (const context of contexts.slice(0, 2)) book(accountant, context);
  await usage.flush();
  for (const context of contexts.slice(2)) book(accountant, context);
  await usage.close();
  queues.splice(queues.indexOf(usage), 1);
  expect(store.rows.map((row) => row.errorCode)).toEqual([null, null, null, null, null]);
  expect(files()).toEqual([]);
});

test('a shutdown with a request still in flight keeps its mark: the next start books it', async () => {
  const store = new FakeStore();
  const { accountant, usage } = gateway(store);
  accountant.opened(requestContext('req_abandoned'), candidate());
  await nextTurn();
  await usage.close();
  queues.splice(queues.indexOf(usage), 1);
  expect(logLines.some((line) => line.includes('requests still in flight at shutdown'))).toBe(true);
  await restart(store);
  expect(store.rowOf('req_abandoned').errorCode).toBe('gateway_stopped');
});

test('marks a failed write could not take are written again with the next one: a request opened while the disk failed is still booked after a crash', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store);
  // The journal's folder is gone (a full or failing disk): the first write fails.
  rmSync(directory, { recursive: true, force: true });
  accountant.opened(requestContext('req_during'), candidate());
  await nextTurn();
  expect(logLines.some((line) => line.includes('the usage journal could not be written'))).toBe(true);
  mkdirSync(directory, { recursive: true });
  accountant.opened(requestContext('req_after'), candidate());
  await nextTurn();
  expect(marks('o').map((mark) => mark[2])).toEqual(['req_during', 'req_after']);
  crash(journal, usage);
  await restart(store);
  expect(store.rows.map((row) => row.requestId).sort()).toEqual(['req_after', 'req_during']);
});

test('a store that reads rows from the journal text skips the marks between them', () => {
  const row = JSON.stringify([
    2,
    'req_1',
    'acc_1',
    'gk_1',
    null,
    null,
    'chat',
    'openai',
    'gpt-4o',
    'gpt-4o',
    'pk_1',
    true,
    200,
    null,
    1,
    1,
    0,
    0,
    null,
    0,
    0.1,
    1,
    false,
    1,
    '2025-01-01T00:00:00.000Z',
    false,
    false,
    null,
    null,
    null,
  ]);
  const text = `["o",1,"req_1","acc_1","gk_1",null,null,"chat","openai","gpt-4o",null,"pk_1",true,false,1735689600000,10,1,null]\n${row}\n["c",1]\n["s"]\n`;
  expect(rowsFromJournalText(text).map((one) => one.requestId)).toEqual(['req_1']);
});

test('a damaged mark is counted unreadable and skipped; the rows beside it replay', async () => {
  const store = new FakeStore();
  const { accountant, usage, journal } = gateway(store);
  const context = requestContext('req_kept');
  accountant.opened(context, candidate());
  await nextTurn();
  book(accountant, context);
  crash(journal, usage);
  const [name] = files();
  writeFileSync(join(directory, name as string), `${readFileSync(join(directory, name as string), 'utf8')}["o",7,"cut`, { flag: 'w' });
  await restart(store);
  expect(store.rows.map((row) => row.requestId)).toEqual(['req_kept']);
  expect(logLines.some((line) => line.includes('could not be read and were skipped'))).toBe(true);
});
