// QA18 streams F3: a stream whose upstream reports no usage (an OpenAI-compatible server that ignores
// stream_options) is booked at Keyway's estimate, and the client saw other figures: no usage chunk at
// all although it asked for one (chat), zeros in message_delta (/v1/messages). The usage a client is
// shown at the end of a stream is the usage its row books.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, flushUsage, type TestGateway } from '../helpers/gateway.ts';
import { gatewayBehindEchoingUpstream, sseAnswer, sseEvent, type EchoingUpstream } from '../helpers/echoing-upstream.ts';
import { ssePayloads } from '../helpers/sse.ts';

let upstream: EchoingUpstream;
let gateway: TestGateway;
let sequence = 0;

beforeAll(async () => {
  ({ upstream, gateway } = await gatewayBehindEchoingUpstream('sk-proj-StreamUsageShown000000000000001', 'vllm-StreamUsageShown0000000000001'));
});

afterAll(async () => {
  await gateway?.stop();
  upstream?.stop();
});

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: 'chatcmpl-up1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

/** A whole stream, ended well with [DONE], that never reports usage. */
function streamWithoutUsage(withUsageChunk = false): Response {
  return sseAnswer([
    sseEvent(chunk({ role: 'assistant', content: '' })),
    sseEvent(chunk({ content: 'Hello there, ' })),
    sseEvent(chunk({ content: 'this answer reports no usage at all.' })),
    sseEvent(chunk({}, 'stop')),
    ...(withUsageChunk ? [sseEvent({ ...chunk({}), choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } })] : []),
    'data: [DONE]\n\n',
  ]);
}

/** A call under a request id of its own, so that its usage row can be found; the id and the answer's SSE payloads. */
async function sentUnderOwnId(path: string, body: Record<string, unknown>): Promise<{ requestId: string; payloads: string[] }> {
  const requestId = `req_usage_shown_${++sequence}`;
  const response = await call(gateway, 'POST', path, body, { headers: { 'x-request-id': requestId } });
  return { requestId, payloads: ssePayloads(await response.text()) };
}

async function rowOf(requestId: string) {
  await flushUsage(gateway);
  const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
  expect(rows).toHaveLength(1);
  return rows[0] as NonNullable<(typeof rows)[number]>;
}

test('chat with include_usage: the usage chunk is there, and shows what the row books', async () => {
  upstream.answer = () => streamWithoutUsage();
  const { requestId, payloads } = await sentUnderOwnId('/v1/chat/completions', {
    model: 'gpt-4o-mini',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Say hello to me, please.' }],
  });
  expect(payloads.at(-1)).toBe('[DONE]');
  const usageChunk = JSON.parse(payloads.at(-2) ?? '{}') as { id?: string; choices?: unknown[]; usage?: { prompt_tokens: number; completion_tokens: number } };
  expect(usageChunk.choices).toEqual([]);
  // Named as the upstream's own chunks are.
  expect(usageChunk.id).toBe('chatcmpl-up1');
  const row = await rowOf(requestId);
  expect(row.usageEstimated).toBe(true);
  expect(row.inputTokens).toBeGreaterThan(0);
  expect(usageChunk.usage).toMatchObject({ prompt_tokens: row.inputTokens, completion_tokens: row.outputTokens });
});

test('chat without include_usage: still no usage chunk', async () => {
  upstream.answer = () => streamWithoutUsage();
  const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  const payloads = ssePayloads(await response.text());
  expect(payloads.some((payload) => payload.includes('"usage":{'))).toBe(false);
  expect(payloads.at(-1)).toBe('[DONE]');
});

test("the upstream's own usage chunk is forwarded once, as it came", async () => {
  upstream.answer = () => streamWithoutUsage(true);
  const response = await call(gateway, 'POST', '/v1/chat/completions', {
    model: 'gpt-4o-mini',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi' }],
  });
  const payloads = ssePayloads(await response.text());
  const withUsage = payloads.filter((payload) => payload.includes('"usage":{'));
  expect(withUsage).toHaveLength(1);
  expect(JSON.parse(withUsage[0] as string).usage).toEqual({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
});

test("/v1/messages: message_delta's usage is what the row books, not zeros", async () => {
  upstream.answer = () => streamWithoutUsage();
  const { requestId, payloads } = await sentUnderOwnId('/v1/messages', {
    model: 'gpt-4o-mini',
    max_tokens: 200,
    stream: true,
    messages: [{ role: 'user', content: 'Say hello to me, please.' }],
  });
  const events = payloads.map((payload) => JSON.parse(payload) as { type: string; usage?: { input_tokens: number; output_tokens: number } });
  const delta = events.find((event) => event.type === 'message_delta');
  const row = await rowOf(requestId);
  expect(row.usageEstimated).toBe(true);
  expect(row.outputTokens).toBeGreaterThan(0);
  expect(delta?.usage).toMatchObject({ input_tokens: row.inputTokens, output_tokens: row.outputTokens });
});
