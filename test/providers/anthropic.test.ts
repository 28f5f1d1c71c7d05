import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { standaloneServices } from '../../core/services.ts';
import { createLogger } from '../../core/logger.ts';

const silentServicesLogger = createLogger('silent', { write: () => undefined } as never);
import { join } from 'node:path';
import { builtinCatalog } from '../helpers/catalog.ts';
import { KeywayError } from '../../core/errors.ts';
import type { CallContext, ProviderAdapter, ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest, StreamPart } from '../../core/spec/vocabulary.ts';
import { classifyAnthropicError } from '../../providers/anthropic/errors.ts';
import { anthropicProviderPlugin, createAnthropicAdapter, NATIVE_BETAS_FIELD } from '../../providers/anthropic/index.ts';
import { buildAnthropicBody, claudeCapabilities } from '../../providers/anthropic/request.ts';
import { parseAnthropicMessage } from '../../providers/anthropic/response.ts';
import { anthropicStreamParts } from '../../providers/anthropic/stream.ts';
import { collect, credentialFor } from './provider-test-kit.ts';

const FIXTURES = join(import.meta.dir, '..', 'fixtures', 'anthropic');

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
}

const credential = credentialFor('anthropic', 'key_1', 'sk-ant-test');

function callContext(model: string, settings: ProviderKeySettings = {}): CallContext {
  return { requestId: 'req_test', credential: credential(settings), model, signal: new AbortController().signal, warnings: [], upstream: {} };
}

function bodyStream(text: string, chunkSize = text.length): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let offset = 0; offset < bytes.length; offset += chunkSize) controller.enqueue(bytes.slice(offset, offset + chunkSize));
      controller.close();
    },
  });
}

/** Strips what a fixture does not pin down: the start part's clock and an error's wording. */
function comparable(part: StreamPart): Record<string, unknown> {
  if (part.type === 'start') return { type: part.type, id: part.id, model: part.model };
  if (part.type === 'usage' || part.type === 'keepalive') return part as unknown as Record<string, unknown>;
  if (part.type === 'error') return { type: 'error', error: { reason: part.error.reason, code: part.error.code, status: part.error.status } };
  return part as unknown as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------

interface RequestCase {
  name: string;
  model: string;
  settings?: ProviderKeySettings;
  request: ChatRequest;
  expected?: Record<string, unknown>;
  warnings?: string[];
  error?: { code: string; param?: string };
}

describe('anthropic request translation (fixtures)', () => {
  for (const testCase of fixture<{ cases: RequestCase[] }>('request-cases.json').cases) {
    test(testCase.name, () => {
      const warnings: string[] = [];
      const translate = () => buildAnthropicBody(testCase.request, testCase.model, testCase.settings ?? {}, warnings);
      if (testCase.error) {
        let caught: unknown;
        try {
          translate();
        } catch (error) {
          caught = error;
        }
        expect(caught).toBeInstanceOf(KeywayError);
        expect((caught as KeywayError).code).toBe(testCase.error.code as KeywayError['code']);
        expect((caught as KeywayError).status).toBe(400);
        if (testCase.error.param) expect((caught as KeywayError).param).toBe(testCase.error.param);
        return;
      }
      const expected = { ...testCase.expected };
      if (expected.max_tokens === '$catalog') expected.max_tokens = builtinCatalog().get('anthropic', testCase.model)?.maxOutputTokens;
      expect(translate()).toEqual(expected);
      expect(warnings).toEqual(testCase.warnings ?? []);
    });
  }

  test('the translation does not change the request it reads', () => {
    const request: ChatRequest = {
      model: 'm',
      messages: [
        { role: 'user', content: 'x' },
        { role: 'user', content: 'y' },
      ],
      stop: ['a'],
    };
    const before = structuredClone(request);
    buildAnthropicBody(request, 'claude-sonnet-4-5', {}, []);
    expect(request).toEqual(before);
  });
});

describe('claude generations', () => {
  const cases: Array<[string, boolean, boolean]> = [
    ['claude-3-7-sonnet-20250219', false, false],
    ['claude-sonnet-4-5-20250929', false, false],
    ['claude-opus-4-20250514', false, false],
    ['claude-4-opus-20250514', false, false],
    ['claude-sonnet-4-6', false, true],
    ['claude-opus-4-6-20260205', false, true],
    ['claude-opus-4-7', true, true],
    ['claude-sonnet-5', true, true],
    ['claude-fable-5', true, true],
    ['claude-mythos-preview', true, true],
    ['my-proxy-model', false, false],
  ];
  for (const [model, samplingRemoved, adaptiveThinking] of cases) {
    test(model, () => expect(claudeCapabilities(model)).toEqual({ samplingRemoved, adaptiveThinking }));
  }
});

// ---------------------------------------------------------------------------------------------

interface ResponseCase {
  name: string;
  body: Record<string, unknown>;
  expected: { id?: string; model?: string; message?: unknown; finishReason?: unknown; usage?: unknown };
}

describe('anthropic response translation (fixtures)', () => {
  for (const testCase of fixture<{ cases: ResponseCase[] }>('response-cases.json').cases) {
    test(testCase.name, () => {
      const result = parseAnthropicMessage(testCase.body);
      const choice = result.choices[0];
      if (testCase.expected.id !== undefined) expect(result.id).toBe(testCase.expected.id);
      if (testCase.expected.model !== undefined) expect(result.model).toBe(testCase.expected.model);
      if (testCase.expected.message !== undefined) expect(choice?.message).toEqual(testCase.expected.message as never);
      if (testCase.expected.finishReason !== undefined) expect(choice?.finishReason).toEqual(testCase.expected.finishReason as never);
      if (testCase.expected.usage !== undefined) expect(result.usage).toEqual(testCase.expected.usage as never);
    });
  }

  test('a body without content is a server error', () => {
    expect(() => parseAnthropicMessage({ type: 'message' })).toThrow(KeywayError);
  });
});

// ---------------------------------------------------------------------------------------------

interface StreamCase {
  name: string;
  file: string;
  expected: Array<Record<string, unknown>>;
}

describe('anthropic stream translation (fixtures)', () => {
  for (const testCase of fixture<{ cases: StreamCase[] }>('stream-cases.json').cases) {
    const text = readFileSync(join(FIXTURES, testCase.file), 'utf8');
    const variants: Array<[string, string, number]> = [
      ['LF', text, text.length],
      ['CRLF', text.replaceAll('\n', '\r\n'), text.length],
      ['7-byte chunks', text, 7],
    ];
    for (const [variant, body, chunkSize] of variants) {
      test(`${testCase.name} (${variant})`, async () => {
        const parts = await collect(anthropicStreamParts(bodyStream(body, chunkSize), new AbortController().signal));
        expect(parts.map(comparable)).toEqual(testCase.expected);
      });
    }
  }

  test('an aborted stream ends quietly, without a truncation error', async () => {
    const controller = new AbortController();
    controller.abort();
    const text = readFileSync(join(FIXTURES, 'stream-truncated.sse'), 'utf8');
    expect(await collect(anthropicStreamParts(bodyStream(text), controller.signal))).toEqual([]);
  });

  test('message_stop with no stop reason before it closes with a plain stop; without message_delta, the output count is unreported', async () => {
    const start =
      'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":12,"output_tokens":1}}}\n\n';
    const text = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n';
    const stop = 'event: message_stop\ndata: {"type":"message_stop"}\n\n';
    const withoutDelta = await collect(anthropicStreamParts(bodyStream(start + text + stop), new AbortController().signal));
    expect(withoutDelta.slice(-2)).toEqual([
      { type: 'finish', index: 0, finishReason: { unified: 'stop', raw: undefined } },
      {
        type: 'usage',
        usage: {
          inputTokens: 12,
          outputTokens: 0,
          totalTokens: 12,
          cachedInputTokens: 0,
          cacheWriteInputTokens: 0,
          reasoningTokens: 0,
          unreported: { outputTokens: 'absent' },
        },
      },
    ]);
    const nullReason = 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":3}}\n\n';
    const withNullReason = await collect(anthropicStreamParts(bodyStream(start + text + nullReason + stop), new AbortController().signal));
    expect(withNullReason.slice(-2).map((part) => part.type)).toEqual(['usage', 'finish']);
    expect(withNullReason.filter((part) => part.type === 'finish')).toEqual([{ type: 'finish', index: 0, finishReason: { unified: 'stop', raw: undefined } }]);
  });

  test('a non-JSON event is a server error part', async () => {
    const parts = await collect(anthropicStreamParts(bodyStream('event: message_start\ndata: {oops\n\n'), new AbortController().signal));
    expect(parts.map(comparable)).toEqual([{ type: 'error', error: { reason: 'server_error', code: 'upstream_error', status: 502 } }]);
  });
});

// ---------------------------------------------------------------------------------------------

interface ErrorCase {
  name: string;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string;
  expected: { reason: string; code: string; status?: number; retryAfterSeconds?: number };
}

describe('anthropic error classification (fixtures)', () => {
  for (const testCase of fixture<{ cases: ErrorCase[] }>('error-cases.json').cases) {
    test(testCase.name, () => {
      const error = classifyAnthropicError(testCase.status, testCase.rawBody ?? JSON.stringify(testCase.body), new Headers(testCase.headers));
      expect(error.reason).toBe(testCase.expected.reason as never);
      expect(error.code).toBe(testCase.expected.code as never);
      if (testCase.expected.status !== undefined) expect(error.status).toBe(testCase.expected.status);
      if (testCase.expected.retryAfterSeconds !== undefined) expect(error.retryAfterSeconds).toBe(testCase.expected.retryAfterSeconds);
      expect(error.extra?.upstream_status).toBe(testCase.status);
    });
  }
});

// ---------------------------------------------------------------------------------------------

interface RecordedCall {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Record<string, unknown> | undefined;
}

/** A fetch that records each call and answers from the queue, in order. */
function scriptedFetch(...responses: Array<() => Response>) {
  const calls: RecordedCall[] = [];
  const implementation = (async (input: string | URL | Request, init?: RequestInit) => {
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, key) => {
      headers[key] = value;
    });
    calls.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers,
      body: typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : undefined,
    });
    const next = responses.shift();
    if (!next) throw new Error('no scripted response left');
    return next();
  }) as typeof fetch;
  return { fetch: implementation, calls };
}

const MESSAGE_BODY = fixture<{ cases: ResponseCase[] }>('response-cases.json').cases[1]?.body as Record<string, unknown>;

function jsonAnswer(body: unknown, status = 200, headers: Record<string, string> = {}): () => Response {
  return () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

describe('anthropic adapter with an injected fetch', () => {
  const request: ChatRequest = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Weather?' }], seed: 3 };

  test('chat posts the translated body with the Anthropic headers and reads the answer', async () => {
    const scripted = scriptedFetch(jsonAnswer(MESSAGE_BODY, 200, { 'request-id': 'req_018E', 'anthropic-ratelimit-requests-remaining': '999' }));
    const adapter = createAnthropicAdapter({ baseUrl: undefined, fetch: scripted.fetch });
    const context = callContext('claude-sonnet-4-5');
    const result = await adapter.chat(request, context);
    const call = scripted.calls[0] as RecordedCall;
    expect(call.url).toBe('https://api.anthropic.com/v1/messages');
    expect(call.method).toBe('POST');
    expect(call.headers['x-api-key']).toBe('sk-ant-test');
    expect(call.headers['anthropic-version']).toBe('2023-06-01');
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers['anthropic-beta']).toBeUndefined();
    expect(call.headers.authorization).toBeUndefined();
    expect(call.body).toEqual({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather?' }] }] });
    expect(context.warnings).toEqual(["anthropic: ignored 'seed'"]);
    expect(context.upstream).toEqual({ status: 200, requestId: 'req_018E', rateLimitRemaining: 999 });
    expect(result.choices[0]?.message.tool_calls?.[0]?.function.arguments).toBe('{"city":"Paris"}');
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'tool-calls', raw: 'tool_use' });
  });

  test('the environment base URL is a bare host, and the key setting overrides it', async () => {
    const scripted = scriptedFetch(jsonAnswer(MESSAGE_BODY), jsonAnswer(MESSAGE_BODY), jsonAnswer(MESSAGE_BODY));
    const adapter = createAnthropicAdapter({ baseUrl: 'http://gateway.internal:8000/', fetch: scripted.fetch });
    await adapter.chat(request, callContext('claude-sonnet-4-5'));
    await adapter.chat(request, callContext('claude-sonnet-4-5', { base_url: 'https://proxy.example.com/anthropic' }));
    await adapter.chat(request, callContext('claude-sonnet-4-5', { base_url: 'https://proxy.example.com/v1' }));
    expect(scripted.calls.map((call) => call.url)).toEqual([
      'http://gateway.internal:8000/v1/messages',
      'https://proxy.example.com/anthropic/v1/messages',
      'https://proxy.example.com/v1/messages',
    ]);
  });

  test('the plugin reads KEYWAY_ANTHROPIC_BASE_URL', async () => {
    const scripted = scriptedFetch(jsonAnswer(MESSAGE_BODY));
    const contributions = await anthropicProviderPlugin.setup?.({
      services: standaloneServices({ logger: silentServicesLogger }),
      config: {},
      logger: undefined as never,
      fetch: scripted.fetch,
      env: { KEYWAY_ANTHROPIC_BASE_URL: 'http://127.0.0.1:9999' },
      dataDirectory: '/tmp',
    });
    const adapter = (contributions as { provider: ProviderAdapter }).provider;
    expect(anthropicProviderPlugin.name).toBe('provider-anthropic');
    expect(anthropicProviderPlugin.kind).toBe('provider');
    expect(adapter.name).toBe('anthropic');
    expect(adapter.defaultBaseUrl).toBe('https://api.anthropic.com');
    await adapter.chat(request, callContext('claude-sonnet-4-5'));
    expect(scripted.calls[0]?.url).toBe('http://127.0.0.1:9999/v1/messages');
  });

  test('chatStream asks for a stream and yields parts', async () => {
    const text = readFileSync(join(FIXTURES, 'stream-text.sse'), 'utf8');
    const scripted = scriptedFetch(() => new Response(bodyStream(text), { status: 200, headers: { 'content-type': 'text/event-stream' } }));
    const adapter = createAnthropicAdapter({ baseUrl: undefined, fetch: scripted.fetch });
    const parts = await collect(await adapter.chatStream(request, callContext('claude-sonnet-4-5')));
    expect(scripted.calls[0]?.body?.stream).toBe(true);
    expect(parts.map((part) => part.type)).toEqual(['start', 'keepalive', 'text-delta', 'text-delta', 'finish', 'usage']);
    // message_start's usage travels on the start part: the prompt, cache reads included, before any content.
    expect(parts[0]?.type === 'start' ? parts[0].promptUsage : undefined).toMatchObject({ inputTokens: 112, cachedInputTokens: 100, outputTokens: 0 });
  });

  test('an upstream error rejects with the classified KeywayError', async () => {
    const scripted = scriptedFetch(jsonAnswer({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }, 429, { 'retry-after': '7' }));
    const adapter = createAnthropicAdapter({ baseUrl: undefined, fetch: scripted.fetch });
    const context = callContext('claude-sonnet-4-5');
    const failure = adapter.chatStream(request, context);
    await expect(failure).rejects.toBeInstanceOf(KeywayError);
    await failure.catch((error: KeywayError) => {
      expect(error.reason).toBe('rate_limit');
      expect(error.retryAfterSeconds).toBe(7);
    });
    expect(context.upstream.status).toBe(429);
  });

  test("listModels follows after_id paging, with each model's created_at as Unix seconds", async () => {
    const scripted = scriptedFetch(
      jsonAnswer({
        data: [
          { type: 'model', id: 'claude-a', created_at: '2025-09-29T00:00:00Z' },
          { type: 'model', id: 'claude-b', created_at: 'not a time' },
        ],
        has_more: true,
        first_id: 'claude-a',
        last_id: 'claude-b',
      }),
      jsonAnswer({ data: [{ type: 'model', id: 'claude-c' }], has_more: false, first_id: 'claude-c', last_id: 'claude-c' }),
    );
    const adapter = createAnthropicAdapter({ baseUrl: undefined, fetch: scripted.fetch });
    expect(await adapter.listModels(credential(), new AbortController().signal)).toEqual([
      { id: 'claude-a', created: 1759104000 },
      { id: 'claude-b' },
      { id: 'claude-c' },
    ]);
    expect(scripted.calls.map((call) => call.url)).toEqual([
      'https://api.anthropic.com/v1/models?limit=1000',
      'https://api.anthropic.com/v1/models?limit=1000&after_id=claude-b',
    ]);
    expect(scripted.calls[0]?.headers['x-api-key']).toBe('sk-ant-test');
  });

  test('countTokens posts to count_tokens without create-only fields', async () => {
    const scripted = scriptedFetch(jsonAnswer({ input_tokens: 321 }));
    const adapter = createAnthropicAdapter({ baseUrl: undefined, fetch: scripted.fetch });
    const count = await adapter.countTokens?.(
      { model: 'x', max_tokens: 10, stream: true, temperature: 0.3, messages: [{ role: 'user', content: 'hi' }], betas: 'token-counting-2024-11-01' },
      callContext('claude-haiku-4-5'),
    );
    const call = scripted.calls[0] as RecordedCall;
    expect(count).toBe(321);
    expect(call.url).toBe('https://api.anthropic.com/v1/messages/count_tokens');
    expect(call.body).toEqual({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] });
    expect(call.headers['anthropic-beta']).toBe('token-counting-2024-11-01');
  });
});

// ---------------------------------------------------------------------------------------------

const SIMULATOR = join(import.meta.dir, '..', 'simulators', 'anthropic.ts');

describe.skipIf(!existsSync(SIMULATOR))('anthropic adapter against the simulator', () => {
  const simulatorRequest: ChatRequest = {
    model: 'claude-sonnet-4-5',
    max_tokens: 200,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'ping' },
    ],
  };

  async function withSimulator(run: (adapter: ProviderAdapter, context: CallContext) => Promise<void>): Promise<void> {
    const { startAnthropicSimulator } = (await import(SIMULATOR)) as typeof import('../simulators/anthropic.ts');
    const simulator = startAnthropicSimulator({ apiKeys: ['sk-ant-test'] });
    try {
      const adapter = createAnthropicAdapter({ baseUrl: simulator.url, fetch });
      await run(adapter, callContext('claude-sonnet-4-5-20250929'));
    } finally {
      await simulator.stop();
    }
  }

  test('non-streamed', async () => {
    await withSimulator(async (adapter, context) => {
      const result = await adapter.chat(simulatorRequest, context);
      const message = result.choices[0]?.message;
      expect(typeof message?.content).toBe('string');
      expect(String(message?.content)).toContain('ping');
      expect(result.choices[0]?.finishReason.unified).toBe('stop');
      expect(result.usage.inputTokens).toBeGreaterThan(0);
      expect(result.usage.outputTokens).toBeGreaterThan(0);
      expect(context.upstream.requestId).toBeDefined();
    });
  });

  test('streamed', async () => {
    await withSimulator(async (adapter, context) => {
      const parts = await collect(await adapter.chatStream(simulatorRequest, context));
      const text = parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join('');
      expect(parts[0]?.type).toBe('start');
      expect(text).toContain('ping');
      expect(parts.some((part) => part.type === 'finish' && part.finishReason.unified === 'stop')).toBe(true);
      const usage = parts.find((part) => part.type === 'usage');
      expect(usage?.type === 'usage' && usage.usage.inputTokens > 0).toBe(true);
      expect(parts.some((part) => part.type === 'error')).toBe(false);
    });
  });

  test('thinking blocks from one answer replay in the next tool-loop turn', async () => {
    await withSimulator(async (adapter, context) => {
      const tools: ChatRequest['tools'] = [
        { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
      ];
      const first: ChatRequest = {
        model: 'claude-sonnet-4-5',
        max_tokens: 4000,
        reasoning_effort: 'low',
        tools,
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      };
      const answer = (await adapter.chat(first, context)).choices[0]?.message;
      expect(answer?.tool_calls?.length).toBeGreaterThan(0);
      expect(Array.isArray(answer?.thinking_blocks)).toBe(true);
      const followUp: ChatRequest = {
        ...first,
        messages: [
          ...first.messages,
          answer as NonNullable<typeof answer>,
          { role: 'tool', tool_call_id: answer?.tool_calls?.[0]?.id ?? '', content: '21C and sunny' },
        ],
      };
      const secondContext = callContext('claude-sonnet-4-5-20250929');
      const result = await adapter.chat(followUp, secondContext);
      expect(secondContext.warnings).toEqual([]);
      expect(result.choices[0]?.message.content).toBeDefined();
    });
  });

  test('a tool call round trip, streamed', async () => {
    await withSimulator(async (adapter, context) => {
      const toolRequest: ChatRequest = {
        ...simulatorRequest,
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
        tools: [
          { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
        ],
        tool_choice: 'required',
      };
      const parts = await collect(await adapter.chatStream(toolRequest, context));
      const start = parts.find((part) => part.type === 'tool-call-start');
      expect(start?.type === 'tool-call-start' && start.name).toBe('get_weather');
      const argumentsText = parts.map((part) => (part.type === 'tool-call-delta' ? part.argumentsDelta : '')).join('');
      expect(() => JSON.parse(argumentsText) as unknown).not.toThrow();
      expect(parts.some((part) => part.type === 'finish' && part.finishReason.unified === 'tool-calls')).toBe(true);
    });
  });
});
