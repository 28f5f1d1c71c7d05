// Over HTTP: an Anthropic stream cut mid-way (an upstream reset, or the client leaving) has already
// reported its prompt's usage in message_start. The row keeps those counts, cache reads and writes
// included, and estimates only the output the provider never reported (docs/costs.md).

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { leaveStreamAfter } from '../helpers/sse.ts';
import { rowOf as rowOfGateway } from './booking.ts';

const UPSTREAM_KEY = 'sk-ant-api03-CutStreamReportedUsageKey0001';
const MODEL = 'claude-haiku-4-5-20251001';
let simulator: SimulatorHandle;
let gateway: TestGateway;
let sequence = 0;

beforeAll(async () => {
  simulator = startAnthropicSimulator({ apiKeys: [UPSTREAM_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_ANTHROPIC_BASE_URL: simulator.url } });
  await addProviderKeys(gateway, [{ name: 'anthropic', api_key: UPSTREAM_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

beforeEach(() => simulator.reset());

const QUESTION = 'Please repeat this sentence back to me slowly, word by word, so that the reply takes a while to stream. '.repeat(4);

/** A cacheable system prompt of its own per call, so the first call writes the cache and the second reads it. */
function bodyFor(path: string, system: string): Record<string, unknown> {
  if (path === '/v1/messages') {
    return {
      model: MODEL,
      max_tokens: 400,
      stream: true,
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: QUESTION }],
    };
  }
  return {
    model: MODEL,
    stream: true,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: QUESTION },
    ],
  };
}

async function send(path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<{ requestId: string; response: Response }> {
  const requestId = `req_cut_stream_${++sequence}`;
  const response = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify(body),
    signal,
  });
  return { requestId, response };
}

const rowOf = (requestId: string): Promise<UsageRecord> => rowOfGateway(gateway, requestId);

/** The same request read to its end: the provider's own counts. */
async function completeRow(path: string, system: string): Promise<UsageRecord> {
  const { requestId, response } = await send(path, bodyFor(path, system));
  await response.text();
  const row = await rowOf(requestId);
  expect(row.usageEstimated).toBe(false);
  return row;
}

function expectReportedInput(cut: UsageRecord, complete: UsageRecord, path: string): void {
  expect(cut.usageEstimated).toBe(true);
  expect(cut.streamed).toBe(true);
  // The provider's prompt count, not Keyway's estimate of it.
  expect(cut.inputTokens).toBe(complete.inputTokens);
  expect(cut.outputTokens).toBeGreaterThan(0);
  expect(cut.outputTokens).toBeLessThan(complete.outputTokens + 10);
  if (path !== '/v1/messages') return;
  // The cut call wrote the cache the complete one then read: the write is booked as reported.
  expect(complete.cachedInputTokens).toBeGreaterThan(0);
  expect(cut.cacheWriteTokens).toBe(complete.cachedInputTokens);
  expect(cut.cachedInputTokens).toBe(0);
}

describe.each(['/v1/chat/completions', '/v1/messages'])('an Anthropic stream cut mid-way on %s keeps the reported prompt usage', (path) => {
  test('an upstream reset after some content', async () => {
    const system = `You are terse. Conversation ${++sequence}. ${'Context that is worth caching. '.repeat(40)}`;
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 3 });
    const { requestId, response } = await send(path, bodyFor(path, system));
    expect(response.status).toBe(200);
    await response.text();
    const cut = await rowOf(requestId);
    expect(cut.status).not.toBe(200);
    expectReportedInput(cut, await completeRow(path, system), path);
  });

  test('the client leaving after some content', async () => {
    const system = `You are terse. Conversation ${++sequence}. ${'Context that is worth caching. '.repeat(40)}`;
    simulator.inject({ kind: 'slow_stream', delayMs: 40 });
    const abort = new AbortController();
    const { requestId, response } = await send(path, bodyFor(path, system), abort.signal);
    expect(response.status).toBe(200);
    await leaveStreamAfter(response, abort, 'Echo');
    const cut = await rowOf(requestId);
    expect(cut.status).toBe(499);
    expectReportedInput(cut, await completeRow(path, system), path);
  });
});
