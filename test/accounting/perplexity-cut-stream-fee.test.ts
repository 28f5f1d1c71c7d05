// Over HTTP: a Perplexity Sonar stream that ends before its usage chunk (the client left, Perplexity
// broke it off with an error event or a dropped connection) is booked at Keyway's estimate of the
// tokens plus the request fee of the depth it searched at. The search runs before the first token and
// Perplexity bills it whether or not the answer is read to its end; QA18 found such rows booked at the
// tokens alone (about 2 % of the cost), so a team's budget could be overshot by leaving streams early.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { leaveStreamAfter } from '../helpers/sse.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { nextRequestId, price, rowOf } from './booking.ts';

const KEY = 'pplx-CutStreamFeeKey0000000000000000001';
let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startPerplexitySimulator({ apiKeys: [KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_PERPLEXITY_BASE_URL: simulator.url }, logLevel: 'info' });
  await addProviderKeys(gateway, [{ name: 'perplexity', api_key: KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

beforeEach(() => simulator.reset());

const QUESTION = 'Write a long essay about the sea and its moods, with sources. '.repeat(6);

function bodyFor(path: string, extra: Record<string, unknown>): Record<string, unknown> {
  if (path === '/v1/responses') return { model: 'sonar', input: QUESTION, stream: true, ...extra };
  if (path === '/v1/messages') return { model: 'sonar', max_tokens: 400, stream: true, messages: [{ role: 'user', content: QUESTION }], ...extra };
  return { model: 'sonar', max_tokens: 400, stream: true, messages: [{ role: 'user', content: QUESTION }], ...extra };
}

async function send(path: string, body: Record<string, unknown>, abort?: AbortController): Promise<{ requestId: string; response: Response }> {
  const requestId = nextRequestId();
  const response = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify(body),
    signal: abort?.signal,
  });
  return { requestId, response };
}

/** The row's cost split into its tokens at list price and what is left: the fee. */
function feeOf(row: UsageRecord): number {
  const rates = price('perplexity/sonar');
  const tokens = row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token;
  return (row.costUsd as number) - tokens;
}

function sonarFee(size: 'low' | 'medium' | 'high'): number {
  return (price('perplexity/sonar').search_context_cost_per_query as Record<string, number>)[`search_context_size_${size}`] as number;
}

describe('a Sonar stream cut short is booked with its request fee', () => {
  for (const path of ['/v1/chat/completions', '/v1/messages', '/v1/responses']) {
    test(`${path}: the client leaves after the first content; default depth (low)`, async () => {
      simulator.inject({ kind: 'slow_stream', delayMs: 40 });
      const abort = new AbortController();
      const { requestId, response } = await send(path, bodyFor(path, {}), abort);
      expect(response.status).toBe(200);
      // Past the first frames (the Responses API's first events carry no text): some content has arrived.
      await leaveStreamAfter(response, abort, path === '/v1/responses' ? 'output_text.delta' : path === '/v1/messages' ? 'text_delta' : '"content"');
      const row = await rowOf(gateway, requestId);
      expect(row.usageEstimated).toBe(true);
      expect(row.status).toBe(499);
      expect(feeOf(row)).toBeCloseTo(sonarFee('low'), 9);
    });
  }

  test('the depth the request asked for is the one charged', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 40 });
    const abort = new AbortController();
    const { requestId, response } = await send(
      '/v1/chat/completions',
      bodyFor('/v1/chat/completions', { web_search_options: { search_context_size: 'high' } }),
      abort,
    );
    await leaveStreamAfter(response, abort, '"content"');
    const row = await rowOf(gateway, requestId);
    expect(row.usageEstimated).toBe(true);
    expect(feeOf(row)).toBeCloseTo(sonarFee('high'), 9);
  });

  for (const fault of [
    { kind: 'mid_stream_error', afterChunks: 3 },
    { kind: 'mid_stream_reset', afterChunks: 3 },
  ] as const) {
    test(`Perplexity breaks the stream off (${fault.kind}): the fee is booked with the estimate`, async () => {
      simulator.inject(fault);
      const { requestId, response } = await send('/v1/chat/completions', bodyFor('/v1/chat/completions', {}));
      await response.text();
      const row = await rowOf(gateway, requestId);
      expect(row.usageEstimated).toBe(true);
      expect(row.status).toBeGreaterThanOrEqual(500);
      expect(feeOf(row)).toBeCloseTo(sonarFee('low'), 9);
    });
  }

  test('a stream read to its end still books the fee once (Perplexity reported it)', async () => {
    const { requestId, response } = await send('/v1/chat/completions', bodyFor('/v1/chat/completions', {}));
    await response.text();
    const row = await rowOf(gateway, requestId);
    expect(row.usageEstimated).toBe(false);
    // The simulator's reported cost rounds each part to micro-dollars.
    expect(feeOf(row)).toBeCloseTo(sonarFee('low'), 6);
  });
});
