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
import { drainSuite, endedBySecondSignal, expectCleanExit, expectEndedAtDeadline, timedAnswer, type DrainAnswer } from './drain-helpers.ts';
import { bookedRows, type BookedRow, chatCompletion, onlyRowOf, ssePayloads, until } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-DrainRequestsUpstreamKey0000000001';
const OPERATOR_KEY = 'kw_op_DrainRequestsOperatorKey0123456789abc';
/** Far longer than any drain here: only the drain can end the call in time. */
const UPSTREAM_DELAY_MS = 30_000;
/** A reply of about 80 words: at a few hundred milliseconds a chunk, a stream of many seconds. */
const LONG_PROMPT = 'word '.repeat(80).trim();

const suite = drainSuite({ upstreamKey: UPSTREAM_KEY, operatorKey: OPERATOR_KEY, env: { KEYWAY_USAGE_FLUSH_MS: '60000' } });

const usageRows = bookedRows;

/** A non-streamed call to the delayed upstream, once the simulator has it in hand (wrapped: an async function would await it). */
async function slowCall(url: string): Promise<{ answer: Promise<DrainAnswer> }> {
  const before = suite.simulator.inferenceRequests().length;
  suite.simulator.inject({ kind: 'delay', delayMs: UPSTREAM_DELAY_MS });
  const answer = chatCompletion(url, OPERATOR_KEY, { model: 'gpt-4o', messages: [{ role: 'user', content: 'a slow answer, please' }] }).then(timedAnswer);
  expect(await until(() => suite.simulator.inferenceRequests().length > before, 5_000)).toBe(true);
  return { answer };
}

/** Booked once, as the drain's cut: the prompt's estimate at list price, nothing of an answer that never came. */
function expectCutRow(rows: BookedRow[], requestId: string | null): void {
  const row = onlyRowOf(rows, requestId);
  expect(row.status).toBe(503);
  expect(row.error_code).toBe('not_ready');
  expect(row.usage_estimated).toBe(1);
  expect(row.input_tokens).toBeGreaterThan(0);
  expect(row.cost_usd).toBeGreaterThan(0);
}

test('a non-streamed call still waiting at the drain deadline is answered 503 there, booked once, and the process exits', async () => {
  const deadlineMs = 800;
  await suite.withGateway('drain-unary', deadlineMs, async (gateway, directory) => {
    const { answer: answering } = await slowCall(gateway.url);
    const answer = await expectEndedAtDeadline(gateway, answering, deadlineMs, /ended at the drain deadline \(KEYWAY_DRAIN_TIMEOUT_MS\)/);
    const rows = usageRows(directory);
    expect(rows).toHaveLength(1);
    expectCutRow(rows, answer.headers.get('x-request-id'));
    expect(rows[0]?.output_tokens).toBe(0);
    expect(readdirSync(join(directory, 'usage-journal')).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
  });
}, 60_000);

test('a second signal ends a non-streamed call and a stream at once, each telling its client that a second signal ended it', async () => {
  await suite.withGateway('drain-second-signal', 60_000, async (gateway, directory) => {
    const { answer: answering } = await slowCall(gateway.url);
    suite.simulator.inject({ kind: 'slow_stream', delayMs: 300 });
    const streaming = await chatCompletion(gateway.url, OPERATOR_KEY, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: LONG_PROMPT }] });
    expect(streaming.status).toBe(200);
    const streamId = streaming.headers.get('x-request-id');
    const streamed = streaming.text();

    const { answer, secondAt } = await endedBySecondSignal(gateway, answering);
    expect(answer.body.error?.message).not.toContain('KEYWAY_DRAIN_TIMEOUT_MS');
    const last = JSON.parse(ssePayloads(await streamed).at(-1) as string) as { error?: { code?: string; message?: string } };
    expect(last.error?.code).toBe('not_ready');
    expect(last.error?.message).toBe('Keyway is shutting down: the stream was ended by a second shutdown signal.');

    await expectCleanExit(gateway, secondAt, 3_000);
    const rows = usageRows(directory);
    expect(rows).toHaveLength(2);
    expectCutRow(rows, answer.headers.get('x-request-id'));
    expectCutRow(rows, streamId);
  });
}, 60_000);

// QA19 ops L4: a stream whose closing chunk (finish_reason "stop") and usage chunk were out, and only
// `[DONE]` was still to come, had the drain's error event appended at the deadline and was booked 503
// at an estimate: its client threw away a complete answer. Everything but the terminator was delivered,
// so the drain closes it as served, booked with the provider's usage.
test('a stream with its answer and usage out but not its [DONE] at the drain deadline is closed as served, with its usage', async () => {
  const deadlineMs = 800;
  await suite.withGateway('drain-closing', deadlineMs, async (gateway, directory) => {
    suite.simulator.inject({ kind: 'closing_pause', until: new Promise(() => undefined), maxMs: 30_000 });
    const response = await chatCompletion(gateway.url, OPERATOR_KEY, {
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'a short answer' }],
    });
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id');
    const streamed = response.text();
    gateway.process.kill('SIGTERM');
    const signalledAt = performance.now();
    const payloads = ssePayloads(await streamed);
    expect(payloads.at(-1)).toBe('[DONE]');
    const chunks = payloads
      .slice(0, -1)
      .map(
        (payload) =>
          JSON.parse(payload) as { error?: unknown; choices?: Array<{ finish_reason?: string | null }>; usage?: { completion_tokens?: number } | null },
      );
    expect(chunks.some((chunk) => chunk.error !== undefined)).toBe(false);
    expect(chunks.some((chunk) => chunk.choices?.[0]?.finish_reason === 'stop')).toBe(true);
    const usage = chunks.at(-1)?.usage;
    expect(usage?.completion_tokens).toBeGreaterThan(0);

    await expectCleanExit(gateway, signalledAt, deadlineMs + 3_000);
    const row = onlyRowOf(usageRows(directory), requestId);
    expect(row.status).toBe(200);
    expect(row.error_code).toBeNull();
    expect(row.usage_estimated).toBe(0);
    expect(row.output_tokens).toBe(usage?.completion_tokens as number);
  });
}, 60_000);
