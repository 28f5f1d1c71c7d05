// The shutdown drain ends every request in flight, not only streams (core/lifecycle/drain.ts). QA17
// SRE: with KEYWAY_DRAIN_TIMEOUT_MS=1000, one non-streamed call to a 45 s upstream and a second
// SIGTERM 3 s after the first, the process exited after 46 s: past any Kubernetes grace period. Now
// at the drain deadline, or at once on a second signal, a non-streamed call's upstream is aborted and
// its client gets a 503 `not_ready` it may send again elsewhere (Retry-After, x-should-retry,
// Connection: close), booked once at Keyway's estimate of its prompt; each message names what ended
// it (the deadline or the second signal), a stream's error event included.

import { expect, test } from 'bun:test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  addOpenAIKey,
  bookedRows,
  type BookedRow,
  chatCompletion,
  dataFolderEnv,
  FROM_SOURCE,
  ssePayloads,
  startGatewayProcess,
  type GatewayProcess,
  simulatorAndScratch,
  until,
} from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-DrainRequestsUpstreamKey0000000001';
const OPERATOR_KEY = 'kw_op_DrainRequestsOperatorKey0123456789abc';
/** Far longer than any drain here: only the drain can end the call in time. */
const UPSTREAM_DELAY_MS = 30_000;
/** A reply of about 80 words: at a few hundred milliseconds a chunk, a stream of many seconds. */
const LONG_PROMPT = 'word '.repeat(80).trim();

const suite = simulatorAndScratch(UPSTREAM_KEY);

function start(directory: string, drainTimeoutMs: number): Promise<GatewayProcess> {
  return startGatewayProcess({
    command: FROM_SOURCE,
    cwd: directory,
    env: dataFolderEnv(directory, {
      operatorKey: OPERATOR_KEY,
      upstreams: { openai: suite.simulator.url },
      extra: { KEYWAY_USAGE_FLUSH_MS: '60000', KEYWAY_DRAIN_TIMEOUT_MS: String(drainTimeoutMs) },
    }),
  });
}

const usageRows = bookedRows;

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code?: string; message?: string } };
  /** performance.now() when the whole answer was in. */
  at: number;
}

/** A non-streamed call to the delayed upstream, once the simulator has it in hand (wrapped: an async function would await it). */
async function slowCall(url: string): Promise<{ answer: Promise<Answer> }> {
  const before = suite.simulator.inferenceRequests().length;
  suite.simulator.inject({ kind: 'delay', delayMs: UPSTREAM_DELAY_MS });
  const answer = chatCompletion(url, OPERATOR_KEY, { model: 'gpt-4o', messages: [{ role: 'user', content: 'a slow answer, please' }] }).then(
    async (response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as Answer['body'], at: performance.now() }),
  );
  expect(await until(() => suite.simulator.inferenceRequests().length > before, 5_000)).toBe(true);
  return { answer };
}

function expectRetryable(answer: Answer, cause: RegExp): void {
  expect(answer.status).toBe(503);
  expect(answer.body.error?.code).toBe('not_ready');
  expect(answer.body.error?.message).toMatch(cause);
  // The official SDKs retry a 503; these say so to any client, and send the retry on a new connection.
  expect(answer.headers.get('retry-after')).toBe('1');
  expect(answer.headers.get('x-should-retry')).toBe('true');
  expect(answer.headers.get('connection')).toBe('close');
}

/** Booked once, as the drain's cut: the prompt's estimate at list price, nothing of an answer that never came. */
function expectCutRow(rows: BookedRow[], requestId: string | null): void {
  const mine = rows.filter((row) => row.request_id === requestId);
  expect(mine).toHaveLength(1);
  const row = mine[0] as BookedRow;
  expect(row.status).toBe(503);
  expect(row.error_code).toBe('not_ready');
  expect(row.usage_estimated).toBe(1);
  expect(row.input_tokens).toBeGreaterThan(0);
  expect(row.cost_usd).toBeGreaterThan(0);
}

test('a non-streamed call still waiting at the drain deadline is answered 503 there, booked once, and the process exits', async () => {
  const directory = suite.dataDirectory('drain-unary');
  const deadlineMs = 800;
  const gateway = await start(directory, deadlineMs);
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    const { answer: answering } = await slowCall(gateway.url);
    const signalledAt = performance.now();
    gateway.process.kill('SIGTERM');
    const answer = await answering;
    expect(answer.at - signalledAt).toBeGreaterThanOrEqual(deadlineMs - 50);
    expect(answer.at - signalledAt).toBeLessThan(deadlineMs + 2_000);
    expectRetryable(answer, /ended at the drain deadline \(KEYWAY_DRAIN_TIMEOUT_MS\)/);
    expect(await gateway.waitForExit(5_000)).toBe(0);
    expect(performance.now() - signalledAt).toBeLessThan(deadlineMs + 3_000);
    const rows = usageRows(directory);
    expect(rows).toHaveLength(1);
    expectCutRow(rows, answer.headers.get('x-request-id'));
    expect(rows[0]?.output_tokens).toBe(0);
    expect(readdirSync(join(directory, 'usage-journal')).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
  } finally {
    if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);

test('a second signal ends a non-streamed call and a stream at once, each telling its client that a second signal ended it', async () => {
  const directory = suite.dataDirectory('drain-second-signal');
  const gateway = await start(directory, 60_000);
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    const { answer: answering } = await slowCall(gateway.url);
    suite.simulator.inject({ kind: 'slow_stream', delayMs: 300 });
    const streaming = await chatCompletion(gateway.url, OPERATOR_KEY, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: LONG_PROMPT }] });
    expect(streaming.status).toBe(200);
    const streamId = streaming.headers.get('x-request-id');
    const streamed = streaming.text();

    gateway.process.kill('SIGTERM');
    await Bun.sleep(300);
    const secondAt = performance.now();
    gateway.process.kill('SIGTERM');
    const answer = await answering;
    expect(answer.at - secondAt).toBeLessThan(2_000);
    expectRetryable(answer, /ended by a second shutdown signal/);
    expect(answer.body.error?.message).not.toContain('KEYWAY_DRAIN_TIMEOUT_MS');
    const last = JSON.parse(ssePayloads(await streamed).at(-1) as string) as { error?: { code?: string; message?: string } };
    expect(last.error?.code).toBe('not_ready');
    expect(last.error?.message).toBe('Keyway is shutting down: the stream was ended by a second shutdown signal.');

    expect(await gateway.waitForExit(5_000)).toBe(0);
    expect(performance.now() - secondAt).toBeLessThan(3_000);
    const rows = usageRows(directory);
    expect(rows).toHaveLength(2);
    expectCutRow(rows, answer.headers.get('x-request-id'));
    expectCutRow(rows, streamId);
  } finally {
    if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);
