// A non-streamed answer whose head arrives at once but whose body is slow (QA14, finding 6). The head
// meets the first-byte deadline; the rest of the body has what the request's total deadline leaves.
// A body that stalls past it is a 504 that says the provider started answering and then stalled, and
// the usage row names the provider, model and key that took the call. A stream's head alone still
// does not meet the first-byte deadline: until its first event the request can fall back.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, call, startTestGateway, type SpecErrorBody, type TestGateway } from '../helpers/gateway.ts';
import { rowOf } from '../accounting/booking.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

const FIRST_BYTE_MS = 300;
const OPENAI_KEY = 'sk-proj-SlowBodyUpstreamKey0000000000001';
const ANTHROPIC_KEY = 'sk-ant-api03-SlowBodyFallbackKey00000001';
const encoder = new TextEncoder();

let upstream: ReturnType<typeof Bun.serve>;
let anthropic: SimulatorHandle;
let gateway: TestGateway;
let openaiKeyId: string;
let sequence = 0;
/** Bodies the slow upstream was still writing when Keyway gave up on them. */
let abandoned = 0;

function completion(): string {
  return JSON.stringify({
    id: 'chatcmpl-slow',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, message: { role: 'assistant', content: 'a slow answer' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
  });
}

/** The head and the body's first 10 bytes at once; the rest after `rest` ms, or never, or a connection reset. */
function slowBody(rest: number | 'never' | 'reset'): Response {
  const text = completion();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(text.slice(0, 10)));
      if (rest === 'never') return;
      timer = setTimeout(
        () => {
          // No reason: Bun drops the connection without logging a stack trace.
          if (rest === 'reset') controller.error();
          else {
            controller.enqueue(encoder.encode(text.slice(10)));
            controller.close();
          }
        },
        rest === 'reset' ? 50 : rest,
      );
    },
    cancel() {
      clearTimeout(timer);
      abandoned++;
    },
  });
  return new Response(body, { headers: { 'content-type': 'application/json' } });
}

/** A stream whose head arrives at once and whose first event never does. */
function silentStream(): Response {
  return new Response(new ReadableStream<Uint8Array>({ start() {} }), { headers: { 'content-type': 'text/event-stream' } });
}

beforeAll(async () => {
  upstream = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      if (request.method === 'GET') return Response.json({ object: 'list', data: [{ id: 'gpt-4o', object: 'model', created: 1 }] });
      const text = await request.text();
      const scenario = /\[\[(\w+)(?::(\d+))?\]\]/.exec(text);
      if (scenario?.[1] === 'slow') return slowBody(Number(scenario[2]));
      if (scenario?.[1] === 'stalled') return slowBody('never');
      if (scenario?.[1] === 'reset') return slowBody('reset');
      if (scenario?.[1] === 'silent') return silentStream();
      return new Response(completion(), { headers: { 'content-type': 'application/json' } });
    },
  });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({
    env: {
      KEYWAY_OPENAI_BASE_URL: `http://127.0.0.1:${upstream.port}/v1`,
      KEYWAY_ANTHROPIC_BASE_URL: anthropic.url,
      KEYWAY_FIRST_BYTE_TIMEOUT_MS: String(FIRST_BYTE_MS),
    },
    probes: false,
  });
  const stored = await addProviderKeys(gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'anthropic', api_key: ANTHROPIC_KEY },
  ]);
  openaiKeyId = String(stored.find((key) => key.name === 'openai')?.key_id);
});

afterAll(async () => {
  await gateway.stop();
  await anthropic.stop();
  await upstream.stop(true);
});

beforeEach(() => anthropic.reset());

const FALLBACK = { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] };

async function ask(
  marker: string,
  routing: Record<string, unknown>,
  stream = false,
): Promise<{ response: Response; elapsed: number; requestId: string; text: string }> {
  const requestId = `req_slow_body_${++sequence}`;
  const started = performance.now();
  const response = await call(
    gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', stream, messages: [{ role: 'user', content: `${marker} hello` }], routing },
    { headers: { 'x-request-id': requestId } },
  );
  const text = await response.text();
  return { response, elapsed: performance.now() - started, requestId, text };
}

describe('a non-streamed answer whose head arrived', () => {
  test('is not cut by the first-byte deadline while its body comes slowly', async () => {
    const { response, elapsed, text } = await ask('[[slow:900]]', { strategy: 'direct', total_timeout_ms: 5_000 });
    expect(response.status).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect((JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe('a slow answer');
  });

  test('stalled past the total deadline: 504 that says it started answering and stalled, booked to the provider and key', async () => {
    const { response, elapsed, requestId, text } = await ask('[[stalled]]', { strategy: 'direct', total_timeout_ms: 1_200 });
    expect(response.status).toBe(504);
    expect(elapsed).toBeGreaterThanOrEqual(1_150);
    expect(elapsed).toBeLessThan(3_000);
    const error = (JSON.parse(text) as SpecErrorBody).error;
    expect(error.code).toBe('upstream_timeout');
    expect(error.message).toContain('openai started answering (HTTP 200 after');
    expect(error.message).toContain('did not finish within the');
    expect(error.message).toContain("the request's total deadline (total_timeout_ms) left");
    expect(error.message).not.toContain('first byte');
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-key-id')).toBe(openaiKeyId);
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    const row: UsageRecord = await rowOf(gateway, requestId);
    expect(row).toMatchObject({
      status: 504,
      errorCode: 'upstream_timeout',
      provider: 'openai',
      model: 'gpt-4o',
      providerKeyId: openaiKeyId,
      byok: true,
      costUsd: 0,
      usageEstimated: false,
    });
  });

  test('the attempt that stalled lists the head it answered with', async () => {
    const { text } = await ask('[[stalled]]', { strategy: 'direct', total_timeout_ms: 600 });
    const error = (JSON.parse(text) as SpecErrorBody).error;
    expect(error.upstream_status).toBe(200);
  });

  test('with a fallback chain the other provider is not called: the account pays the provider that answered', async () => {
    const { response, requestId } = await ask('[[stalled]]', { ...FALLBACK, total_timeout_ms: 1_200 });
    expect(response.status).toBe(504);
    expect(anthropic.inferenceRequests()).toHaveLength(0);
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect((await rowOf(gateway, requestId)).provider).toBe('openai');
  });

  test('a body cut after its head still falls back, and the answer is booked to who served it', async () => {
    const { response, requestId } = await ask('[[reset]]', { ...FALLBACK, total_timeout_ms: 5_000 });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(anthropic.inferenceRequests()).toHaveLength(1);
    expect((await rowOf(gateway, requestId)).provider).toBe('anthropic');
  });

  test('a body cut after its head with nowhere to fall back is booked to the provider that answered', async () => {
    const { response, requestId, text } = await ask('[[reset]]', { strategy: 'direct', total_timeout_ms: 5_000 });
    expect(response.status).toBe(502);
    expect((JSON.parse(text) as SpecErrorBody).error.attempts?.[0]?.status).toBe(200);
    expect(await rowOf(gateway, requestId)).toMatchObject({ status: 502, provider: 'openai', providerKeyId: openaiKeyId, costUsd: 0 });
  });

  test('the upstream is let go once the deadline passed', async () => {
    const before = abandoned;
    await ask('[[stalled]]', { strategy: 'direct', total_timeout_ms: 400 });
    for (let waited = 0; waited < 2_000 && abandoned === before; waited += 20) await Bun.sleep(20);
    expect(abandoned).toBe(before + 1);
  });
});

describe('a stream whose head arrived', () => {
  test('still falls back at the first-byte deadline when no event follows', async () => {
    const { response, elapsed, requestId } = await ask('[[silent]]', { ...FALLBACK, total_timeout_ms: 5_000 }, true);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(elapsed).toBeLessThan(FIRST_BYTE_MS + 1_500);
    expect((await rowOf(gateway, requestId)).provider).toBe('anthropic');
  });

  test('with nowhere to fall back, it is the first-byte timeout, booked to nobody', async () => {
    const { response, requestId, text } = await ask('[[silent]]', { strategy: 'direct', total_timeout_ms: 5_000 }, true);
    expect(response.status).toBe(504);
    expect((JSON.parse(text) as SpecErrorBody).error.message).toContain(`sent no first byte within ${FIRST_BYTE_MS} ms`);
    expect((await rowOf(gateway, requestId)).provider).toBeNull();
  });
});
