// Over HTTP: a client that leaves mid-stream is billed for what the provider read and generated
// (an estimate, flagged), and model names with control characters are refused in every dialect.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { leaveStreamAfter } from '../helpers/sse.ts';

const UPSTREAM_KEY = 'sk-proj-DisconnectBillingKey000000000000001';
let simulator: SimulatorHandle;
let gateway: TestGateway;
let sequence = 0;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: UPSTREAM_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

beforeEach(() => simulator.reset());

const LONG_PROMPT = 'Please repeat this sentence back to me slowly, word by word, so that the reply takes a while to stream. '.repeat(4);

async function rowOf(requestId: string) {
  for (let waited = 0; waited < 3_000; waited += 25) {
    await flushUsage(gateway);
    const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
    if (rows.length > 0) return rows;
    await Bun.sleep(25);
  }
  return [];
}

describe('a stream the client leaves', () => {
  test('is billed more than $0: the prompt and the streamed text, estimated and flagged', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 40 });
    const requestId = `req_disconnect_${++sequence}`;
    const abort = new AbortController();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: LONG_PROMPT }] }),
      signal: abort.signal,
    });
    expect(response.status).toBe(200);
    // Read until some content has arrived, then leave.
    await leaveStreamAfter(response, abort, '"content":"Echo');

    const rows = await rowOf(requestId);
    expect(rows).toHaveLength(1);
    const row = rows[0] as (typeof rows)[number];
    expect(row.status).toBe(499);
    expect(row.errorCode).toBe('client_closed');
    expect(row.streamed).toBe(true);
    expect(row.usageEstimated).toBe(true);
    // The simulator counts the prompt at about a token per 4 characters: the estimate is not below it.
    expect(row.inputTokens).toBeGreaterThanOrEqual(Math.ceil(LONG_PROMPT.length / 4));
    expect(row.outputTokens).toBeGreaterThan(0);
    expect(row.costUsd).toBeGreaterThan(0);
  });

  test('a stream read to its end is billed from the provider and not flagged', async () => {
    const requestId = `req_disconnect_${++sequence}`;
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'short' }] },
      { headers: { 'x-request-id': requestId } },
    );
    expect((await readSse(response)).at(-1)).toBe('[DONE]');
    const rows = await rowOf(requestId);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.status).toBe(200);
    expect(rows[0]?.usageEstimated).toBe(false);
    expect(rows[0]?.costUsd).toBeGreaterThan(0);
  });
});

// QA18 streams F1: a client that left while the upstream had not answered yet (before the response's
// head) was booked 502 upstream_error, with no provider, and counted as a provider failure in the
// metrics and the logs. It is the client's doing, as a client that leaves mid-stream: 499 client_closed.
// (A non-streamed call runs to completion whether its client stays or not: docs/api.md.)
describe('a client that leaves a stream before the answer began', () => {
  test('is booked 499 client_closed, not an upstream error', async () => {
    simulator.inject({ kind: 'delay', delayMs: 1_500 });
    const requestId = `req_disconnect_${++sequence}`;
    const abort = new AbortController();
    const sent = fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'take your time' }] }),
      signal: abort.signal,
    });
    // Once the upstream has the request, the client gives up.
    for (let waited = 0; waited < 2_000 && simulator.inferenceRequests().length === 0; waited += 10) await Bun.sleep(10);
    abort.abort();
    await sent.catch(() => undefined);
    const rows = await rowOf(requestId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 499, errorCode: 'client_closed', costUsd: 0 });
    const metrics = await (await call(gateway, 'GET', '/metrics')).text();
    expect(metrics).not.toMatch(/keyway_requests_total\{[^}]*error_type="upstream_error"[^}]*\}/);
  });
});

describe('model names with control characters', () => {
  const names = ['gpt-4o\n', 'gpt-4o\r\nX-Injected: 1', 'gpt\u0000-4o', 'gpt-4o\u001b[31m', 'gpt-4o\u0085', 'gpt-4o\u2028'];

  test('are refused on chat completions with 400 invalid_field model', async () => {
    for (const model of names) {
      const response = await call(gateway, 'POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { param: string; message: string } };
      expect(body.error.param).toBe('model');
      expect(body.error.message).toContain('control characters');
    }
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  test('are refused on embeddings', async () => {
    const response = await call(gateway, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small\n', input: 'hello' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe('model');
  });

  test('are refused on the Anthropic Messages dialect', async () => {
    const response = await call(gateway, 'POST', '/v1/messages', { model: 'claude-3-5-sonnet\t', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.message).toContain('control characters');
  });

  test('an ordinary name still passes', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(response.status).toBe(200);
  });
});
