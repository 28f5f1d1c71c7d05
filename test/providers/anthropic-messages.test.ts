import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeywayError } from '../../core/errors.ts';
import { SseParser, type SseEvent } from '../../core/wire/sse.ts';
import type { ChatResult, StreamPart } from '../../core/spec/vocabulary.ts';
import { AnthropicStreamEncoder, chatRequestFromMessages, messagesResponseFromResult, stopReasonFromFinish } from '../../plugins/anthropic-messages/index.ts';
import { buildAnthropicBody } from '../../providers/anthropic/request.ts';
import { anthropicStreamParts } from '../../providers/anthropic/stream.ts';
import { collect, streamOf } from './provider-test-kit.ts';

/** A Messages request through the dialect and the Anthropic adapter comes out as it went in, with no warning. */
function expectAnthropicRoundTrip(original: Record<string, unknown>): void {
  const { request, warnings } = chatRequestFromMessages(original, { targetProvider: 'anthropic' });
  const upstreamWarnings: string[] = [];
  const rebuilt = buildAnthropicBody(request, 'claude-sonnet-4-5', {}, upstreamWarnings);
  expect(warnings).toEqual([]);
  expect(upstreamWarnings).toEqual([]);
  expect(rebuilt).toEqual(original);
}

const FIXTURES = join(import.meta.dir, '..', 'fixtures', 'anthropic');

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
}

function parseSse(text: string): SseEvent[] {
  const parser = new SseParser();
  return [...parser.push(text), ...parser.end()];
}

function eventsOf(text: string): Array<{ event: string | undefined; data: unknown }> {
  return parseSse(text).map((event) => ({ event: event.event, data: JSON.parse(event.data) as unknown }));
}

function thrown(run: () => unknown): KeywayError {
  try {
    run();
  } catch (error) {
    if (error instanceof KeywayError) return error;
    throw error;
  }
  throw new Error('expected a KeywayError');
}

// ---------------------------------------------------------------------------------------------

interface RequestCase {
  name: string;
  target?: string;
  body: unknown;
  expected?: Record<string, unknown>;
  warnings?: string[];
  error?: { code: string; param: string };
  /** The refusal for a route without Anthropic's own API, when only it can serve the request. */
  nativeOnly?: { code: string; param: string };
}

describe('inbound Messages request → ChatRequest (fixtures)', () => {
  for (const testCase of fixture<{ cases: RequestCase[] }>('messages-request-cases.json').cases) {
    test(testCase.name, () => {
      const options = testCase.target === undefined ? {} : { targetProvider: testCase.target };
      if (testCase.error) {
        const error = thrown(() => chatRequestFromMessages(testCase.body, options));
        expect(error.code).toBe(testCase.error.code as KeywayError['code']);
        expect(error.status).toBe(400);
        expect(error.param).toBe(testCase.error.param);
        expect(error.message).toContain(testCase.error.param);
        return;
      }
      const translation = chatRequestFromMessages(testCase.body, options);
      expect(translation.request).toEqual(testCase.expected as never);
      expect(translation.warnings).toEqual(testCase.warnings ?? []);
      const refusal = translation.nativeOnly;
      const nativeOnly: RequestCase['nativeOnly'] = refusal === undefined ? undefined : { code: refusal.code, param: String(refusal.param) };
      expect(nativeOnly).toEqual(testCase.nativeOnly);
    });
  }

  test('a request asks for citations when a search result or document enables them, in a turn or a tool result, whoever serves', () => {
    const result = (citations?: unknown) => ({
      type: 'search_result',
      source: 'kb://a',
      title: 'A',
      content: [{ type: 'text', text: 'a' }],
      ...(citations === undefined ? {} : { citations }),
    });
    const document = (citations?: unknown) => ({
      type: 'document',
      source: { type: 'text', media_type: 'text/plain', data: 'd' },
      ...(citations === undefined ? {} : { citations }),
    });
    const asking = (content: unknown[], target?: string) =>
      chatRequestFromMessages(
        {
          model: 'claude-sonnet-4-5',
          max_tokens: 10,
          messages: [
            { role: 'user', content: 'search' },
            { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'search', input: {} }] },
            { role: 'user', content },
          ],
        },
        target === undefined ? {} : { targetProvider: target },
      ).citations;
    const enabled = { enabled: true };
    for (const target of [undefined, 'anthropic']) {
      expect(asking([result(enabled), { type: 'text', text: 'q' }], target)).toBe(true);
      expect(asking([{ type: 'tool_result', tool_use_id: 'toolu_1', content: [result(enabled)] }], target)).toBe(true);
      expect(asking([document(enabled), { type: 'text', text: 'q' }], target)).toBe(true);
      expect(asking([result(), document({ enabled: false }), { type: 'text', text: 'q' }], target)).toBe(false);
      expect(asking([{ type: 'tool_result', tool_use_id: 'toolu_1', content: [result({ enabled: false })] }], target)).toBe(false);
      // Only the blocks Anthropic cites from: a text block's own `citations` (a cited answer sent back) asks for none.
      expect(asking([{ type: 'text', text: 'q', citations: enabled }], target)).toBe(false);
    }
  });

  test('a body that is not an object is refused', () => {
    expect(thrown(() => chatRequestFromMessages([1, 2])).status).toBe(400);
  });

  test('an Anthropic request survives the round trip through the OpenAI shape to Anthropic', () => {
    const original = {
      model: 'claude-sonnet-4-5',
      max_tokens: 8000,
      system: [{ type: 'text', text: 'You are a weather bot.', cache_control: { type: 'ephemeral' } }],
      thinking: { type: 'enabled', budget_tokens: 2048 },
      metadata: { user_id: 'u-7' },
      stop_sequences: ['###'],
      tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Paris?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'Call the tool.', signature: 'sig_1' },
            { type: 'text', text: 'Looking it up.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '21C' },
            { type: 'text', text: 'Thanks' },
          ],
        },
      ],
    };
    expectAnthropicRoundTrip(original);
  });

  test("a tool result's image, text, error flag and every cache_control survive the round trip to Anthropic", () => {
    const original = {
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      tools: [{ name: 'Read', description: 'Read a file', input_schema: { type: 'object', properties: {} }, cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look at shot.png' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Read', input: {} }] },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 'toolu_01',
              content: [
                { type: 'text', text: 'shot.png', cache_control: { type: 'ephemeral' } },
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' }, cache_control: { type: 'ephemeral' } },
              ],
              is_error: true,
              cache_control: { type: 'ephemeral', ttl: '1h' },
            },
            { type: 'tool_result', tool_use_id: 'toolu_02', content: [{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }] },
          ],
        },
      ],
    };
    expectAnthropicRoundTrip(original);
  });

  test('search results, in a user turn and in a tool result, survive the round trip to Anthropic with their citations flag and cache_control', () => {
    const result = (title: string, cacheControl?: unknown) => ({
      type: 'search_result',
      source: `https://docs.example.com/${title}`,
      title,
      content: [
        { type: 'text', text: `${title} says yes.` },
        { type: 'text', text: 'More.', cache_control: { type: 'ephemeral' } },
      ],
      citations: { enabled: true },
      ...(cacheControl === undefined ? {} : { cache_control: cacheControl }),
    });
    expectAnthropicRoundTrip({
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      tools: [{ name: 'search', input_schema: { type: 'object', properties: { query: { type: 'string' } } } }],
      messages: [
        { role: 'user', content: [result('intro', { type: 'ephemeral', ttl: '1h' }), { type: 'text', text: 'Search more' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'search', input: { query: 'more' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [result('first'), result('second', { type: 'ephemeral' })] }] },
      ],
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('ChatResult → Messages answer (fixtures)', () => {
  for (const testCase of fixture<{ cases: Array<{ name: string; result: ChatResult; stopSequences?: string[]; expected: unknown }> }>(
    'messages-response-cases.json',
  ).cases) {
    test(testCase.name, () => expect(messagesResponseFromResult(testCase.result, testCase.stopSequences)).toEqual(testCase.expected as never));
  }

  test('a result without an id gets a msg_ id', () => {
    const result: ChatResult = {
      id: '',
      model: 'm',
      created: 1,
      choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finishReason: { unified: 'stop', raw: undefined } }],
      usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
    };
    expect(messagesResponseFromResult(result).id).toMatch(/^msg_[0-9a-f]{32}$/);
  });

  test('stop reasons map back per §7.5', () => {
    expect(stopReasonFromFinish({ unified: 'stop', raw: 'stop' })).toBe('end_turn');
    expect(stopReasonFromFinish({ unified: 'stop', raw: 'stop_sequence' })).toBe('stop_sequence');
    expect(stopReasonFromFinish({ unified: 'stop', raw: 'STOP_SEQUENCE', stopSequence: null })).toBe('stop_sequence');
    expect(stopReasonFromFinish({ unified: 'stop', raw: 'STOP' })).toBe('end_turn');
    expect(stopReasonFromFinish({ unified: 'length', raw: 'model_context_window_exceeded' })).toBe('model_context_window_exceeded');
    expect(stopReasonFromFinish({ unified: 'length', raw: 'MAX_TOKENS' })).toBe('max_tokens');
    expect(stopReasonFromFinish({ unified: 'tool-calls', raw: 'TOOL_CALL' })).toBe('tool_use');
    expect(stopReasonFromFinish({ unified: 'content-filter', raw: 'content_filter' })).toBe('refusal');
    expect(stopReasonFromFinish(undefined)).toBe('end_turn');
  });
});

// ---------------------------------------------------------------------------------------------

interface EncoderCase {
  name: string;
  /** The request's stop sequences, when the case needs them. */
  stopSequences?: string[];
  parts: StreamPart[];
  expected: Array<{ event: string; data: Record<string, unknown> }>;
}

function encodeAll(parts: Iterable<StreamPart>, model = 'requested-model', stopSequences: string[] = []): string {
  const encoder = new AnthropicStreamEncoder({ model, requestId: 'req_test', stopSequences });
  let text = '';
  for (const part of parts) text += encoder.encode(part);
  return text + encoder.end();
}

describe('StreamParts → Anthropic SSE (fixtures)', () => {
  for (const testCase of fixture<{ cases: EncoderCase[] }>('messages-stream-cases.json').cases) {
    test(testCase.name, () => {
      const text = encodeAll(testCase.parts, undefined, testCase.stopSequences);
      expect(text.endsWith('\n\n')).toBe(true);
      const events = eventsOf(text);
      for (const [position, event] of events.entries()) {
        const expected = testCase.expected[position];
        const message = (expected?.data as { message?: { id?: string } } | undefined)?.message;
        if (message?.id === '$generated') {
          const actualId = (event.data as { message: { id: string } }).message.id;
          expect(actualId).toMatch(/^msg_/);
          message.id = actualId;
        }
        // The event line always names the payload's type, as Anthropic's stream does.
        expect(event.event).toBe((event.data as { type: string }).type);
      }
      expect(events).toEqual(testCase.expected);
    });
  }

  test('nothing follows an error, not even at the end', () => {
    const encoder = new AnthropicStreamEncoder({ model: 'm', requestId: 'r' });
    encoder.encode({ type: 'error', error: { status: 502, type: 'upstream_error', code: 'upstream_error', message: 'x' } });
    expect(encoder.encode({ type: 'text-delta', index: 0, text: 'late' })).toBe('');
    expect(encoder.end()).toBe('');
  });

  test("Anthropic's own stream, read for the native API, is written back byte for byte, with the parts the books need", async () => {
    for (const file of ['stream-text.sse', 'stream-tool-use.sse', 'stream-thinking.sse']) {
      const original = readFileSync(join(FIXTURES, file), 'utf8');
      const parts = await collect(anthropicStreamParts(streamOf(original, original.length), new AbortController().signal, true));
      expect(parts[0]).toMatchObject({ type: 'start', native: true });
      expect(parts.some((part) => part.type === 'usage')).toBe(true);
      expect(parts.some((part) => part.type === 'finish')).toBe(true);
      expect(encodeAll(parts)).toBe(original);
    }
  });

  // The shutdown drain closes a stream whose message_delta is out as served (core/lifecycle/respond.ts),
  // before Anthropic's message_stop came: the client still gets its message_stop.
  test("Anthropic's own stream ended after its message_delta, before its message_stop, is closed with one", async () => {
    const original = readFileSync(join(FIXTURES, 'stream-text.sse'), 'utf8');
    const parts = await collect(anthropicStreamParts(streamOf(original, original.length), new AbortController().signal, true));
    const stop = parts.findIndex((part) => part.type === 'native-event' && part.event === 'message_stop');
    expect(stop).toBeGreaterThan(0);
    const encoder = new AnthropicStreamEncoder({ model: 'm', requestId: 'r' });
    const written =
      parts
        .slice(0, stop)
        .map((part) => encoder.encode(part))
        .join('') + encoder.end();
    expect(written).toBe(original);
  });

  test('read for the native API, an unnamed {"error": …} event is an error part, and an event without a type is dropped', async () => {
    const original = readFileSync(join(FIXTURES, 'stream-text.sse'), 'utf8');
    const opening = original.slice(0, original.indexOf('\n\n') + 2);
    const text = `${opening}data: {"note":"no type"}\n\nevent: \ndata: {"note":"a blank name"}\n\ndata: {"error":{"type":"overloaded_error","message":"key sk-ant-api03-abcdefghijklmnop refused"}}\n\n`;
    const parts = await collect(anthropicStreamParts(streamOf(text), new AbortController().signal, true));
    expect(parts.map((part) => (part.type === 'native-event' ? part.event : part.type))).toEqual(['start', 'message_start', 'error']);
    const error = parts.at(-1);
    expect(error?.type === 'error' ? error.error.message : '').toContain('key [REDACTED] refused');
    const written = encodeAll(parts);
    expect(written).not.toMatch(/^event:[ \t]*(undefined)?$/m);
    expect(written).not.toContain('sk-ant-api03-abcdefghijklmnop');
  });

  test('an Anthropic stream read and re-encoded keeps its event sequence', async () => {
    for (const file of ['stream-text.sse', 'stream-thinking.sse']) {
      const original = readFileSync(join(FIXTURES, file), 'utf8');
      const parts = await collect(anthropicStreamParts(streamOf(original, original.length), new AbortController().signal));
      const reencoded = parseSse(encodeAll(parts)).map((event) => event.event);
      const expected = parseSse(original).map((event) => event.event);
      // Anthropic's keep-alives reach the client, after message_start; a block opens at its first
      // content, so a ping between an empty block start and its first delta comes before the block.
      const withoutPings = (names: Array<string | undefined>) => names.filter((name) => name !== 'ping');
      expect(withoutPings(reencoded)).toEqual(withoutPings(expected));
      expect(reencoded.length - withoutPings(reencoded).length).toBe(expected.length - withoutPings(expected).length);
      expect(reencoded.indexOf('ping')).not.toBe(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('the official Anthropic SDK reads what the encoders produce', () => {
  const toolParts = fixture<{ cases: EncoderCase[] }>('messages-stream-cases.json').cases[3]?.parts ?? [];

  async function sdkClient(answer: () => Response) {
    const { default: Anthropic } = await import('@anthropic-ai/sdk');
    return new Anthropic({ apiKey: 'sk-test', baseURL: 'http://keyway.test', maxRetries: 0, fetch: (async () => answer()) as unknown as typeof fetch });
  }

  test('a streamed answer from an OpenAI upstream assembles into the final message', async () => {
    const sse = encodeAll(toolParts);
    const client = await sdkClient(() => new Response(sse, { headers: { 'content-type': 'text/event-stream' } }));
    const message = await client.messages.stream({ model: 'gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    expect(message.content).toEqual([
      { type: 'text', text: 'Sure.' } as never,
      { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } } as never,
    ]);
    expect(message.stop_reason).toBe('tool_use');
    expect(message.usage.input_tokens).toBe(30);
    expect(message.usage.cache_read_input_tokens).toBe(20);
    expect(message.usage.output_tokens).toBe(12);
  });

  test("an OpenAI upstream's streamed refusal assembles into a text block with stop_reason refusal", async () => {
    const refusalParts = fixture<{ cases: EncoderCase[] }>('messages-stream-cases.json').cases.find((testCase) =>
      testCase.name.startsWith('an OpenAI refusal'),
    );
    const sse = encodeAll(refusalParts?.parts ?? []);
    const client = await sdkClient(() => new Response(sse, { headers: { 'content-type': 'text/event-stream' } }));
    const message = await client.messages.stream({ model: 'gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: "I can't help with that." } as never]);
    expect(message.stop_reason).toBe('refusal');
  });

  test('a non-streamed answer parses as a Message', async () => {
    const cases = fixture<{ cases: Array<{ result: ChatResult }> }>('messages-response-cases.json').cases;
    const body = messagesResponseFromResult(cases[2]?.result as ChatResult);
    const client = await sdkClient(() => Response.json(body));
    const message = await client.messages.create({ model: 'any-model', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
    expect(message.content[0]?.type).toBe('thinking');
    expect(message.stop_reason).toBe('pause_turn');
  });
});
