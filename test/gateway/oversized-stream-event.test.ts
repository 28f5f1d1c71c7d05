// An upstream stream that sends one line that never ends (QA14, finding 7: a 30 MB `data:` line).
// Keyway stops reading at its limit for one event (16 MiB) instead of buffering the line whole, lets
// the upstream go, ends the client's stream with an upstream error event, and books it as every
// stream cut short: from its estimate of what was streamed and the prompt (the prompt as reported
// when the provider stated it up front), flagged usageEstimated. Before the first byte reaches the
// client, the same failure falls back like any server error. The gateway holds no opening back
// (KEYWAY_STREAM_OPENING_HOLD_MS=0): an endless line right after the role chunk could otherwise reach
// the limit inside the hold's window, before the first byte, and which of the two it did would depend
// on the machine's speed.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { MAX_SSE_EVENT_CHARACTERS } from '../../core/wire/sse.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { ssePayloads } from '../helpers/sse.ts';
import { rowOf } from '../accounting/booking.ts';

const encoder = new TextEncoder();
const PIECE = encoder.encode('C'.repeat(64 * 1024));
const REPORTED_INPUT_TOKENS = 1234;

let upstream: ReturnType<typeof Bun.serve>;
let gateway: TestGateway;
let sequence = 0;
/** Characters of the endless line handed to Keyway, per request marker. */
const sent = new Map<string, number>();
/** Markers of the endless streams Keyway cancelled. */
const cancelled = new Set<string>();

const openaiChunk = (delta: Record<string, unknown>): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-endless', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;

const anthropicEvent = (type: string, data: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

const ANTHROPIC_START =
  anthropicEvent('message_start', {
    message: {
      id: 'msg_endless',
      type: 'message',
      role: 'assistant',
      model: 'claude-opus-4-5-20251101',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: REPORTED_INPUT_TOKENS, output_tokens: 1 },
    },
  }) + anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });

const ANTHROPIC_WHOLE =
  ANTHROPIC_START +
  anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Served by the fallback.' } }) +
  anthropicEvent('content_block_stop', { index: 0 }) +
  anthropicEvent('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5 } }) +
  anthropicEvent('message_stop', {});

/** `opening`, then one `data:` line that never ends, 64 KiB at a time, paced, until Keyway cancels. */
function endlessLine(marker: string, opening: string, lineStart: string): Response {
  sent.set(marker, 0);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(opening + lineStart));
    },
    async pull(controller) {
      // Paced, so that a gateway that buffers the line (as Keyway once did) fills its memory slowly.
      await Bun.sleep(1);
      sent.set(marker, (sent.get(marker) ?? 0) + PIECE.length);
      controller.enqueue(PIECE);
    },
    cancel() {
      cancelled.add(marker);
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

function answer(path: string, marker: string): Response {
  if (path.endsWith('/messages')) {
    if (marker === 'anthropic-after-start')
      return endlessLine(
        marker,
        `${ANTHROPIC_START}${anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hello there' } })}`,
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"',
      );
    return new Response(ANTHROPIC_WHOLE, { headers: { 'content-type': 'text/event-stream' } });
  }
  const role = openaiChunk({ role: 'assistant', content: '' });
  const line = 'data: {"id":"chatcmpl-endless","choices":[{"index":0,"delta":{"content":"';
  if (marker === 'after-content')
    return endlessLine(marker, role + openaiChunk({ content: 'The answer begins ' }) + openaiChunk({ content: 'and then goes on' }), line);
  if (marker === 'after-role') return endlessLine(marker, role, line);
  return endlessLine(marker, '', line);
}

beforeAll(async () => {
  upstream = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (request.method === 'GET') {
        if (request.headers.has('anthropic-version'))
          return Response.json({
            data: [{ type: 'model', id: 'claude-opus-4-5-20251101', display_name: 'Claude', created_at: '2025-11-01T00:00:00Z' }],
            has_more: false,
          });
        return Response.json({ object: 'list', data: [{ id: 'gpt-4o', object: 'model', created: 1 }] });
      }
      const marker = /\[\[([\w-]+)\]\]/.exec(await request.text())?.[1] ?? '';
      return answer(path, marker);
    },
  });
  const base = `http://127.0.0.1:${upstream.port}`;
  gateway = await startTestGateway({
    env: { KEYWAY_OPENAI_BASE_URL: `${base}/v1`, KEYWAY_ANTHROPIC_BASE_URL: base, KEYWAY_STREAM_OPENING_HOLD_MS: '0' },
    probes: false,
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: 'sk-proj-EndlessLineUpstreamKey000000001' },
    { name: 'anthropic', api_key: 'sk-ant-api03-EndlessLineUpstreamKey0001' },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await upstream.stop(true);
});

interface Streamed {
  response: Response;
  payloads: string[];
  elapsed: number;
  row: UsageRecord;
}

/** One streamed call read to its end; the total deadline ends it within the test's time should the line be read without a limit. */
async function stream(marker: string, model: string, routing: Record<string, unknown> = { strategy: 'direct' }): Promise<Streamed> {
  const requestId = `req_endless_${++sequence}`;
  const started = performance.now();
  const response = await call(
    gateway,
    'POST',
    '/v1/chat/completions',
    {
      model,
      stream: true,
      messages: [{ role: 'user', content: `[[${marker}]] Please answer at length about the history of long lines.` }],
      routing: { ...routing, total_timeout_ms: 4_000 },
    },
    { headers: { 'x-request-id': requestId } },
  );
  const payloads = ssePayloads(await response.text());
  const elapsed = performance.now() - started;
  return { response, payloads, elapsed, row: await rowOf(gateway, requestId) };
}

function lastError(payloads: string[]): { message: string; type: string; code: string; event_size_limit?: number } {
  return (JSON.parse(payloads.at(-1) ?? '{}') as { error: { message: string; type: string; code: string; event_size_limit?: number } }).error;
}

async function expectCancelled(marker: string): Promise<void> {
  for (let waited = 0; waited < 2_000 && !cancelled.has(marker); waited += 20) await Bun.sleep(20);
  expect(cancelled.has(marker)).toBe(true);
}

describe('an endless line after the first byte', () => {
  test('ends the stream with an upstream error event at the limit, and the upstream is let go', async () => {
    const { response, payloads, elapsed } = await stream('after-content', 'gpt-4o');
    expect(response.status).toBe(200);
    expect(payloads).not.toContain('[DONE]');
    const error = lastError(payloads);
    expect(error.type).toBe('upstream_error');
    expect(error.code).toBe('upstream_error');
    expect(error.message).toContain(`openai sent a stream event longer than ${MAX_SSE_EVENT_CHARACTERS} characters`);
    expect(error.event_size_limit).toBe(MAX_SSE_EVENT_CHARACTERS);
    // Read up to the limit, not beyond it: the line is not buffered whole (read without a limit, the
    // paced line reaches hundreds of MiB before the total deadline). The stream's queue may pull a few
    // pieces more before the cancel lands on a busy machine (CI once saw exactly 4 more).
    expect(sent.get('after-content')).toBeLessThan(MAX_SSE_EVENT_CHARACTERS + 16 * PIECE.length);
    expect(elapsed).toBeLessThan(3_000);
    await expectCancelled('after-content');
  });

  test('is booked from the estimate of what was streamed and the prompt, flagged, never as free', async () => {
    const { row } = await stream('after-content', 'gpt-4o');
    expect(row).toMatchObject({ status: 502, errorCode: 'upstream_error', provider: 'openai', streamed: true, usageEstimated: true });
    expect(row.inputTokens).toBeGreaterThan(0);
    // "The answer begins and then goes on": a handful of tokens, not the 16 MiB line.
    expect(row.outputTokens).toBeGreaterThan(0);
    expect(row.outputTokens).toBeLessThan(20);
    expect(row.costUsd).toBeGreaterThan(0);
  });

  test('with nothing but the role chunk streamed before it, the prompt is still booked, flagged', async () => {
    const { payloads, row } = await stream('after-role', 'gpt-4o');
    expect(lastError(payloads).message).toContain('longer than');
    expect(row).toMatchObject({ status: 502, provider: 'openai', usageEstimated: true, outputTokens: 0 });
    expect(row.inputTokens).toBeGreaterThan(0);
  });

  test("keeps the prompt's usage as the provider reported it up front (Anthropic's message_start)", async () => {
    const { payloads, row } = await stream('anthropic-after-start', 'claude-opus-4-5');
    expect(lastError(payloads).message).toContain(`anthropic sent a stream event longer than ${MAX_SSE_EVENT_CHARACTERS} characters`);
    expect(row).toMatchObject({ status: 502, provider: 'anthropic', usageEstimated: true, inputTokens: REPORTED_INPUT_TOKENS });
    expect(row.outputTokens).toBeGreaterThan(0);
    await expectCancelled('anthropic-after-start');
  });
});

describe('an endless line as the first event', () => {
  test('is a server error before the first byte: the chain falls back', async () => {
    const { response, payloads, row } = await stream('at-once', 'gpt-4o', { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(payloads.at(-1)).toBe('[DONE]');
    expect(row).toMatchObject({ status: 200, provider: 'anthropic', usageEstimated: false });
    await expectCancelled('at-once');
  });
});
