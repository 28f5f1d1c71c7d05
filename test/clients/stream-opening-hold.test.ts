// The opening hold (docs/routing.md, "Streams"): an error that comes after a provider's opening events
// (Anthropic's message_start, Cohere's message-start, an OpenAI role chunk) and before any generated
// content still falls back, as an error in the first event does, because Keyway holds those events for
// a short window instead of sending them at once (QA18: they went out, and the error ended the stream).
// The window is bounded: a reasoning stream whose content comes later is sent as it always was.

import { describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { UsageRecord } from '../../core/spec/store.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { eventTypesUntilFailure, openingHoldWorld } from './opening-hold-gateway.ts';
import { rowOf } from '../accounting/booking.ts';

const OPENAI_KEY = 'sk-proj-OpeningHoldUpstreamKey0000000001';
const ANTHROPIC_KEY = 'sk-ant-api03-OpeningHoldUpstreamKey00001';
const COHERE_KEY = 'co-OpeningHoldUpstreamKey000000000000001';
/** The provider's in-stream error right after its opening events, before any content. */
const ERROR_AFTER_OPENING = { kind: 'mid_stream_error', afterChunks: 0 } as const;
/** A 200 stream whose first event is the error: what fell back before the opening hold too. */
const FIRST_EVENT_ERROR = {
  kind: 'status',
  status: 200,
  body: `data: ${JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } })}\n\n`,
  headers: { 'content-type': 'text/event-stream' },
} as const;

/** The default hold; a 100 ms hold, for a stream whose content comes after it; KEYWAY_STREAM_OPENING_HOLD_MS=0, no hold. */
const { simulators, gateways } = openingHoldWorld(
  { openai: OPENAI_KEY, anthropic: ANTHROPIC_KEY, cohere: COHERE_KEY },
  { standard: undefined, shortHold: '100', noHold: '0' },
);
const { openai, anthropic } = simulators;

let sequence = 0;
const requestId = (name: string): string => `opening-hold-${name}-${process.pid}-${++sequence}`;

function clients(target: TestGateway): { anthropic: Anthropic; openai: OpenAI } {
  const apiKey = target.defaultAdminKey;
  return {
    anthropic: new Anthropic({ baseURL: target.url, apiKey, maxRetries: 0 }),
    openai: new OpenAI({ baseURL: `${target.url}/v1`, apiKey, maxRetries: 0 }),
  };
}

interface ReadChat {
  headers: Headers;
  text: string;
  /** Chunks that carried `delta.role`: one clean stream has one. */
  roleChunks: number;
}

/** An OpenAI-SDK stream read to its end; `onChunk` sees each chunk as it arrives. */
async function readChat(target: TestGateway, body: Record<string, unknown>, id: string, onChunk?: () => void): Promise<ReadChat> {
  const { data: stream, response } = await clients(target)
    .openai.chat.completions.create({ stream: true, ...body } as never as OpenAI.ChatCompletionCreateParamsStreaming, { headers: { 'x-request-id': id } })
    .withResponse();
  let text = '';
  let roleChunks = 0;
  for await (const chunk of stream) {
    onChunk?.();
    const delta = chunk.choices[0]?.delta;
    if (delta?.role !== undefined) roleChunks++;
    text += delta?.content ?? '';
  }
  return { headers: response.headers, text, roleChunks };
}

/** A Messages stream from the Anthropic SDK, routed Anthropic first, then OpenAI. */
async function anthropicStream(target: TestGateway, content: string, id: string) {
  const { data: stream, response } = await clients(target)
    .anthropic.messages.create(
      {
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        stream: true,
        messages: [{ role: 'user', content }],
        routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] },
      } as never as Anthropic.MessageCreateParamsStreaming,
      { headers: { 'x-request-id': id } },
    )
    .withResponse();
  return { stream, response };
}

/** The usage row of a request that fell back once and was served by `provider`. */
function expectServedAfterOneFallback(row: UsageRecord, provider: string): void {
  expect(row).toMatchObject({ status: 200, provider, fallbackAttempts: 1, usageEstimated: false });
  expect(row.outputTokens).toBeGreaterThan(0);
}

describe('an error after the opening events and before any content falls back', () => {
  test("Anthropic's overloaded_error right after message_start: the Anthropic SDK sees one clean stream from the fallback", async () => {
    anthropic.inject(ERROR_AFTER_OPENING);
    const id = requestId('anthropic');
    const { stream, response } = await anthropicStream(gateways.standard, 'held then served', id);
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    expect(text).toBe('Echo: held then served');
    expect(types.filter((type) => type === 'message_start')).toHaveLength(1);
    expect(types.at(-1)).toBe('message_stop');
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(anthropic.inferenceRequests()).toHaveLength(1);
    expect(openai.inferenceRequests()).toHaveLength(1);
    expectServedAfterOneFallback(await rowOf(gateways.standard, id), 'openai');
  });

  test.each([
    ["Cohere's message-start, then a message-end whose finish_reason is ERROR", 'cohere', 'command-r7b-12-2024', 'openai'],
    ['an OpenAI stream that sends its role chunk and then an error', 'openai', 'gpt-4o-mini', 'anthropic'],
  ] as const)('%s: the OpenAI SDK sees one clean stream from the fallback', async (_name, failing, model, fallback) => {
    simulators[failing].inject(ERROR_AFTER_OPENING);
    const id = requestId(failing);
    const content = `${failing} fails first`;
    const read = await readChat(
      gateways.standard,
      { model, messages: [{ role: 'user', content }], routing: { strategy: 'fallback_chain', provider_order: [failing, fallback] } },
      id,
    );
    expect(read.text).toBe(`Echo: ${content}`);
    expect(read.roleChunks).toBe(1);
    expect(read.headers.get('x-provider-used')).toBe(fallback);
    expect(read.headers.get('x-fallback-attempts')).toBe('1');
    expect(simulators[failing].inferenceRequests()).toHaveLength(1);
    expect(simulators[fallback].inferenceRequests()).toHaveLength(1);
    expectServedAfterOneFallback(await rowOf(gateways.standard, id), fallback);
  });

  test('one usage row per request, the failed attempt counted as a fallback attempt as for a first-event error', async () => {
    // An error as the stream's first event and an error after its opening events book the same row:
    // the served attempt's, with one fallback attempt.
    const rows: UsageRecord[] = [];
    for (const fault of [FIRST_EVENT_ERROR, ERROR_AFTER_OPENING]) {
      openai.inject(fault);
      const id = requestId('row');
      await readChat(
        gateways.standard,
        {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'one row please' }],
          routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] },
        },
        id,
      );
      const row = await rowOf(gateways.standard, id);
      expect((await gateways.standard.runtime.store.listUsage('default')).filter((candidate) => candidate.requestId === id)).toHaveLength(1);
      rows.push(row);
    }
    const [firstEvent, afterOpening] = rows.map(({ status, provider, model, fallbackAttempts, usageEstimated, inputTokens, outputTokens }) => ({
      status,
      provider,
      model,
      fallbackAttempts,
      usageEstimated,
      inputTokens,
      outputTokens,
    }));
    expect(afterOpening).toEqual(firstEvent as NonNullable<typeof firstEvent>);
    expectServedAfterOneFallback(rows[1] as UsageRecord, 'anthropic');
  });
});

describe('the hold is bounded', () => {
  test('a reasoning stream whose content comes after the window is not cut: its role chunk goes out at the window', async () => {
    let releaseContent: () => void = () => undefined;
    const contentReleased = new Promise<void>((resolve) => {
      releaseContent = resolve;
    });
    // Who released the content: the client, once it had the role chunk (the window passed), or the
    // simulator's own bound, had the role chunk been held until the content.
    let releasedBy: 'client' | 'bound' | undefined;
    openai.inject({
      kind: 'opening_pause',
      until: contentReleased.then(() => {
        releasedBy ??= 'client';
      }),
      maxMs: 4_000,
    });
    setTimeout(() => {
      releasedBy ??= 'bound';
    }, 4_000).unref();
    const id = requestId('reasoning');
    // Content comes well after the first-byte deadline: the role chunk met it, and nothing after it is bound by it.
    const FIRST_BYTE_MS = 1_000;
    let chunks = 0;
    const read = await readChat(
      gateways.shortHold,
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'think long' }], routing: { strategy: 'direct', timeout_ms: FIRST_BYTE_MS } },
      id,
      () => {
        if (++chunks === 1) setTimeout(releaseContent, FIRST_BYTE_MS + 500);
      },
    );
    expect(releasedBy).toBe('client');
    expect(read.text).toBe('Echo: think long');
    expect(read.roleChunks).toBe(1);
    expect(read.headers.get('x-fallback-attempts')).toBe('0');
    expect(openai.inferenceRequests()).toHaveLength(1);
    expect(await rowOf(gateways.shortHold, id)).toMatchObject({ status: 200, provider: 'openai', fallbackAttempts: 0 });
  });

  test('with KEYWAY_STREAM_OPENING_HOLD_MS=0, an error after the opening events ends the stream as before', async () => {
    anthropic.inject(ERROR_AFTER_OPENING);
    const id = requestId('no-hold');
    const { stream, response } = await anthropicStream(gateways.noHold, 'no hold', id);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    const { types, failure } = await eventTypesUntilFailure(stream);
    expect(types[0]).toBe('message_start');
    expect(String(failure)).toContain('overloaded');
    expect(openai.inferenceRequests()).toHaveLength(0);
    expect(await rowOf(gateways.noHold, id)).toMatchObject({ status: 502, provider: 'anthropic', fallbackAttempts: 0 });
  });
});
