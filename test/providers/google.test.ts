import { afterAll, afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import { standaloneServices } from '../../core/services.ts';
import { createLogger } from '../../core/logger.ts';

const silentServicesLogger = createLogger('silent', { write: () => undefined } as never);
import type { CallContext, ProviderCredential, ProviderKeySettings } from '../../core/spec/plugin.ts';
import { REASONING_WANTED, type ChatRequest, type StreamPart, type ToolCall } from '../../core/spec/vocabulary.ts';
import { classifyGeminiError } from '../../providers/google/errors.ts';
import { createGoogleAdapter, googleProviderPlugin } from '../../providers/google/index.ts';
import { buildGeminiRequest } from '../../providers/google/request.ts';
import { decodeToolCallId, encodeToolCallId, parseGeminiChatResponse, type GeminiResponse } from '../../providers/google/response.ts';
import { HARM_CATEGORIES, safetySettingsFrom } from '../../providers/google/safety.ts';
import { toGeminiParameters } from '../../providers/google/schema.ts';
import { geminiStreamParts } from '../../providers/google/stream.ts';
import type { Fault } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { bytesInPieces, collect, streamOf } from './provider-test-kit.ts';

const FIXTURES = `${import.meta.dir}/../fixtures/google`;
const API_KEY = 'AIzaSyTEST-google-key-0123456789abcdefXYZ';

async function fixture<T>(name: string): Promise<T> {
  return (await Bun.file(`${FIXTURES}/${name}`).json()) as T;
}

/** Synthesized tool-call ids carry a random part; fixtures name them `call_<n>`. */
function normalizeIds<T>(value: T): T {
  return JSON.parse(JSON.stringify(value).replace(/call_[0-9a-f]{8}_(\d+)/g, 'call_$1')) as T;
}

function credential(settings: ProviderKeySettings = {}): ProviderCredential {
  return {
    id: 'pk_google',
    provider: 'google',
    owner: 'account',
    accountId: 'acc_1',
    organizationId: undefined,
    settings,
    status: 'active',
    weight: 1,
    apiKey: API_KEY,
  };
}

function callContext(settings: ProviderKeySettings = {}, model = 'gemini-2.5-flash'): CallContext {
  return { requestId: 'req_1', credential: credential(settings), model, signal: new AbortController().signal, warnings: [], upstream: {} };
}

function withoutCreated(parts: StreamPart[]): unknown[] {
  return parts.map((part) => (part.type === 'start' ? { type: part.type, id: part.id, model: part.model } : part));
}

describe('request translation (fixtures)', async () => {
  const cases =
    await fixture<Array<{ name: string; model: string; settings: ProviderKeySettings; request: ChatRequest; expected: unknown; warnings: string[] }>>(
      'request-cases.json',
    );
  for (const testCase of cases) {
    test(testCase.name, () => {
      const warnings: string[] = [];
      expect(buildGeminiRequest(testCase.request, testCase.model, testCase.settings, warnings)).toEqual(testCase.expected as Record<string, unknown>);
      expect(warnings).toEqual(testCase.warnings);
    });
  }
});

describe('request translation (rules)', () => {
  const base: ChatRequest = {
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: 'Hi' }],
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } } }],
  };
  const translate = (request: ChatRequest, settings: ProviderKeySettings = {}, warnings: string[] = []) =>
    buildGeminiRequest(request, 'gemini-2.5-flash', settings, warnings);

  test('tool_choice maps to functionCallingConfig modes', () => {
    expect(translate({ ...base, tool_choice: 'none' }).toolConfig).toEqual({ functionCallingConfig: { mode: 'NONE' } });
    expect(translate({ ...base, tool_choice: 'required' }).toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY' } });
    expect(translate({ ...base, tool_choice: 'auto' }).toolConfig).toEqual({ functionCallingConfig: { mode: 'AUTO' } });
    expect(translate(base).toolConfig).toBeUndefined();
  });

  test('a tool result whose call is unknown is refused, since Gemini needs the function name', () => {
    const request: ChatRequest = {
      model: 'm',
      messages: [
        { role: 'user', content: 'x' },
        { role: 'tool', tool_call_id: 'nope', content: 'r' },
      ],
    };
    expect(() => translate(request)).toThrow(KeywayError);
  });

  test('tool-call arguments that are not a JSON object are refused', () => {
    const request: ChatRequest = {
      model: 'm',
      messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1]' } }] }],
    };
    expect(() => translate(request)).toThrow(KeywayError);
  });

  test('an image that is neither a data URL nor http(s) is refused', () => {
    const request: ChatRequest = { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] };
    expect(() => translate(request)).toThrow(KeywayError);
  });

  test('a file part with a Files API id is refused naming it, not dropped (QA18), and a data URL is sent inline', () => {
    const byId: ChatRequest = {
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Sum it up' },
            { type: 'file', file: { file_id: 'file-abc123' } },
          ],
        },
      ],
    };
    let refusal: unknown;
    try {
      translate(byId);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(KeywayError);
    expect((refusal as KeywayError).toDescriptor('req_1')).toMatchObject({ code: 'unsupported_feature', param: 'messages[0].content[1]' });
    const inline: ChatRequest = {
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'file', file: { filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } }] }],
    };
    expect(JSON.stringify(translate(inline))).toContain('"inlineData":{"mimeType":"application/pdf","data":"JVBERi0="}');
  });

  test('a tool result of several text parts is their texts a blank line apart, not run together', () => {
    const request: ChatRequest = {
      model: 'm',
      messages: [
        { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'ping', arguments: '{}' } }] },
        {
          role: 'tool',
          tool_call_id: 'call_1',
          content: [
            { type: 'text', text: 'pong-a' },
            { type: 'text', text: 'pong-b' },
          ],
        },
      ],
    };
    const body = translate(request) as { contents: Array<{ parts: Array<{ functionResponse?: { response: unknown } }> }> };
    expect(body.contents[1]?.parts[0]?.functionResponse?.response).toEqual({ output: 'pong-a\n\npong-b' });
  });

  test("a thought signature in Google's extra_content is echoed", () => {
    const toolCall = {
      id: 'c1',
      type: 'function' as const,
      function: { name: 'f', arguments: '{}' },
      extra_content: { google: { thought_signature: 'U0lH' } },
    };
    const body = translate({ model: 'm', messages: [{ role: 'assistant', tool_calls: [toolCall] }] }) as { contents: Array<{ parts: unknown[] }> };
    expect(body.contents[0]?.parts[0]).toEqual({ functionCall: { id: 'c1', name: 'f', args: {} }, thoughtSignature: 'U0lH' });
  });

  test('thought signatures survive the trip through a tool-call id', () => {
    for (const signature of ['c2lnLW9uZQ==', 'ab+/cd==', 'YQ', 'x'.repeat(2000)]) {
      const id = encodeToolCallId('call_x_0', signature);
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
      const decoded = decodeToolCallId(id);
      expect(decoded.baseId).toBe('call_x_0');
      expect(Buffer.from(decoded.thoughtSignature ?? '', 'base64').equals(Buffer.from(signature, 'base64'))).toBe(true);
    }
    expect(decodeToolCallId('call_plain')).toEqual({ baseId: 'call_plain', thoughtSignature: undefined });
  });

  test('safety levels map to thresholds for every Gemini harm category', () => {
    const expectations = { high: 'BLOCK_LOW_AND_ABOVE', medium: 'BLOCK_MEDIUM_AND_ABOVE', low: 'BLOCK_ONLY_HIGH', none: 'BLOCK_NONE', off: 'OFF' };
    for (const [level, threshold] of Object.entries(expectations)) {
      expect(safetySettingsFrom(level, [])).toEqual(HARM_CATEGORIES.map((category) => ({ category, threshold })));
    }
    const warnings: string[] = [];
    expect(safetySettingsFrom('paranoid', warnings)).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });

  test('a function without parameters declares none (Gemini rejects empty properties)', () => {
    expect(toGeminiParameters({ type: 'object', properties: {}, additionalProperties: false })).toBeUndefined();
    expect(toGeminiParameters(undefined)).toBeUndefined();
  });
});

describe('thoughts shown when the client asked (includeThoughts)', () => {
  const question: ChatRequest = { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Think.' }] };
  const thinkingConfig = (request: ChatRequest, model = 'gemini-2.5-flash') =>
    (buildGeminiRequest(request, model, {}, []).generationConfig as Record<string, unknown> | undefined)?.thinkingConfig;

  test("the Responses API's reasoning.summary asks for thoughts even without an effort, and its absence asks for none", () => {
    expect(thinkingConfig({ ...question, [REASONING_WANTED]: true })).toEqual({ includeThoughts: true });
    expect(thinkingConfig({ ...question, reasoning_effort: 'low', [REASONING_WANTED]: false })).toEqual({ thinkingBudget: 1024 });
    expect(thinkingConfig({ ...question, reasoning_effort: 'low', [REASONING_WANTED]: true })).toEqual({ thinkingBudget: 1024, includeThoughts: true });
  });

  test('no thoughts are asked for when thinking is off, the model does not think, or nothing asked', () => {
    expect(thinkingConfig({ ...question, reasoning_effort: 'none', [REASONING_WANTED]: true })).toEqual({ thinkingBudget: 0 });
    expect(thinkingConfig({ ...question, thinking: { type: 'disabled' } })).toEqual({ thinkingBudget: 0 });
    expect(thinkingConfig({ ...question, reasoning_effort: 'none' }, 'gemini-2.5-pro')).toEqual({ thinkingBudget: 128 });
    expect(thinkingConfig({ ...question, [REASONING_WANTED]: true }, 'gemini-2.0-flash')).toBeUndefined();
    expect(thinkingConfig(question)).toBeUndefined();
  });

  test("a streamed thought carries no signature: Gemini's is not an Anthropic thinking signature", async () => {
    const sse = `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Hmm.', thought: true, thoughtSignature: 'c2ln' }], role: 'model' }, index: 0 }] })}\r\n\r\n`;
    const parts = await collect(geminiStreamParts(streamOf(sse), new AbortController().signal, 'gemini-2.5-flash'));
    expect(parts.find((part) => part.type === 'reasoning-delta')).toEqual({ type: 'reasoning-delta', index: 0, text: 'Hmm.' });
  });
});

describe('response translation (fixtures)', async () => {
  const cases = await fixture<Array<{ name: string; model: string; body: GeminiResponse; expected: Record<string, unknown> }>>('response-cases.json');
  for (const testCase of cases) {
    test(testCase.name, () => {
      const { created, id, ...result } = normalizeIds(parseGeminiChatResponse(testCase.body, testCase.model));
      expect(typeof created).toBe('number');
      if (testCase.expected.id === undefined) expect(id).toMatch(/^gemini-/);
      expect({ ...result, ...(testCase.expected.id === undefined ? {} : { id }) }).toEqual(testCase.expected as typeof result);
    });
  }

  test('no candidates and no block reason is a server error, not an empty answer', () => {
    expect(() => parseGeminiChatResponse({ candidates: [] }, 'gemini-2.5-flash')).toThrow(KeywayError);
  });

  test('synthesized tool-call ids differ between responses', () => {
    const body: GeminiResponse = { candidates: [{ content: { parts: [{ functionCall: { name: 'f', args: {} } }] }, finishReason: 'STOP' }] };
    const first = parseGeminiChatResponse(body, 'm').choices[0]?.message.tool_calls?.[0]?.id;
    const second = parseGeminiChatResponse(body, 'm').choices[0]?.message.tool_calls?.[0]?.id;
    expect(first).toMatch(/^call_[0-9a-f]{8}_0$/);
    expect(first).not.toBe(second);
  });
});

describe('error classification (fixtures, reference §3.5)', async () => {
  const cases =
    await fixture<
      Array<{
        name: string;
        status: number;
        headers?: Record<string, string>;
        body: unknown;
        expected: { reason: string; code: string; status: number; retryAfterSeconds?: number };
      }>
    >('error-cases.json');
  for (const testCase of cases) {
    test(testCase.name, () => {
      const bodyText = typeof testCase.body === 'string' ? testCase.body : JSON.stringify(testCase.body);
      const error = classifyGeminiError(testCase.status, bodyText, new Headers(testCase.headers ?? {}));
      const actual: Record<string, unknown> = { reason: error.reason, code: error.code, status: error.status, retryAfterSeconds: error.retryAfterSeconds };
      expect(actual).toEqual({ retryAfterSeconds: undefined, ...testCase.expected });
    });
  }
});

describe('stream translation (fixtures, CRLF framing)', async () => {
  const cases = await fixture<Array<{ name: string; file: string; model: string; expected: unknown[] }>>('stream-cases.json');
  for (const testCase of cases) {
    test(testCase.name, async () => {
      const bytes = new Uint8Array(await Bun.file(`${FIXTURES}/${testCase.file}`).arrayBuffer());
      expect(new TextDecoder().decode(bytes)).toContain('\r\n\r\n');
      for (const size of [1, 7, bytes.length]) {
        const parts = normalizeIds(withoutCreated(await collect(geminiStreamParts(bytesInPieces(bytes, size), new AbortController().signal, testCase.model))));
        expect(parts).toMatchObject(testCase.expected);
        expect(parts).toHaveLength(testCase.expected.length);
      }
    });
  }

  test("a failed generation's error names the finish reason and Gemini's finishMessage", async () => {
    const bytes = new Uint8Array(await Bun.file(`${FIXTURES}/stream-malformed-function-call.sse`).arrayBuffer());
    const last = (await collect(geminiStreamParts(bytesInPieces(bytes, bytes.length), new AbortController().signal, 'gemini-2.5-flash'))).at(-1);
    expect(last?.type === 'error' ? last.error.message : '').toContain('MALFORMED_FUNCTION_CALL: Malformed function call: print(default_api.get_weather');
    expect(last?.type === 'error' ? last.error.extra : undefined).toMatchObject({ provider: 'google', upstream_type: 'MALFORMED_FUNCTION_CALL' });
  });
});

// ---------------------------------------------------------------------------------------------
// The adapter over an injected fetch

interface RecordedCall {
  url: string;
  method: string;
  headers: Headers;
  body: unknown;
}

function fakeFetch(answer: (call: RecordedCall) => Response): { fetch: typeof fetch; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const implementation = async (input: string | URL | Request, init?: RequestInit) => {
    const call = {
      url: String(input),
      method: init?.method ?? 'GET',
      headers: new Headers(init?.headers),
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    calls.push(call);
    return answer(call);
  };
  return { fetch: implementation as typeof fetch, calls };
}

function expectKeyOnlyInHeader(call: RecordedCall): void {
  expect(call.url).not.toContain(API_KEY);
  expect(call.url).not.toContain('key=');
  expect(call.headers.get('x-goog-api-key')).toBe(API_KEY);
  expect(call.headers.get('authorization')).toBeNull();
}

const TEXT_ANSWER = {
  candidates: [{ content: { role: 'model', parts: [{ text: 'Bonjour' }] }, finishReason: 'STOP', index: 0 }],
  usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 1, totalTokenCount: 4 },
  responseId: 'r1',
};
const HELLO: ChatRequest = { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Hello' }] };

describe('adapter over an injected fetch', () => {
  test('chat: native generateContent URL, key only in x-goog-api-key, warnings reach the context', async () => {
    const { fetch, calls } = fakeFetch(() => Response.json(TEXT_ANSWER));
    const context = callContext();
    const result = await createGoogleAdapter({ fetch }).chat({ ...HELLO, logit_bias: { 1: 1 } }, context);
    expect(calls[0]?.url).toBe('https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent');
    expect(calls[0]?.method).toBe('POST');
    expectKeyOnlyInHeader(calls[0] as RecordedCall);
    expect(result.choices[0]?.message.content).toBe('Bonjour');
    expect(context.warnings).toEqual(["google: 'logit_bias' is not supported by Gemini and was ignored"]);
    expect(context.upstream.status).toBe(200);
  });

  test('stream: streamGenerateContent?alt=sse, key only in the header', async () => {
    const sse = await Bun.file(`${FIXTURES}/stream-text.sse`).text();
    const { fetch, calls } = fakeFetch(() => new Response(sse, { headers: { 'content-type': 'text/event-stream' } }));
    const parts = await collect(await createGoogleAdapter({ fetch, baseUrl: 'http://127.0.0.1:9/' }).chatStream(HELLO, callContext()));
    expect(calls[0]?.url).toBe('http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expectKeyOnlyInHeader(calls[0] as RecordedCall);
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'text-delta', 'text-delta', 'finish', 'usage']);
  });

  test('the key setting base_url wins over the environment, which wins over the default', async () => {
    const { fetch, calls } = fakeFetch(() => Response.json(TEXT_ANSWER));
    const adapter = createGoogleAdapter({ fetch, baseUrl: 'http://env.example' });
    await adapter.chat(HELLO, callContext({ base_url: 'http://key.example/' }));
    await adapter.chat(HELLO, callContext());
    expect(calls.map((call) => new URL(call.url).origin)).toEqual(['http://key.example', 'http://env.example']);
  });

  test('the plugin reads KEYWAY_GOOGLE_BASE_URL', async () => {
    const { fetch, calls } = fakeFetch(() => Response.json(TEXT_ANSWER));
    const contributions = await googleProviderPlugin.setup?.({
      services: standaloneServices({ logger: silentServicesLogger }),
      config: {},
      env: { KEYWAY_GOOGLE_BASE_URL: 'http://sim.example' },
      fetch,
      logger: undefined as never,
      dataDirectory: '/tmp',
    });
    const adapter = contributions ? contributions.provider : undefined;
    expect(adapter?.name).toBe('google');
    await adapter?.chat(HELLO, callContext());
    expect(calls[0]?.url.startsWith('http://sim.example/v1beta/models/')).toBe(true);
  });

  test('an upstream error rejects with the classified failure and never echoes the key', async () => {
    const body = {
      error: {
        code: 400,
        message: `API key not valid: ${API_KEY}`,
        status: 'INVALID_ARGUMENT',
        details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }],
      },
    };
    const { fetch } = fakeFetch(() => Response.json(body, { status: 400 }));
    const failure = await createGoogleAdapter({ fetch })
      .chat(HELLO, callContext())
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KeywayError);
    expect((failure as KeywayError).reason).toBe('auth_error');
    expect((failure as KeywayError).message).not.toContain(API_KEY);
  });

  test('listModels follows pageToken and strips models/', async () => {
    const { fetch, calls } = fakeFetch((call) =>
      new URL(call.url).searchParams.get('pageToken') === null
        ? Response.json({ models: [{ name: 'models/gemini-2.5-flash' }, { name: 'models/gemini-2.5-pro' }], nextPageToken: 'page-2' })
        : Response.json({ models: [{ name: 'models/gemini-embedding-001' }] }),
    );
    const names = await createGoogleAdapter({ fetch }).listModels(credential(), new AbortController().signal);
    expect(names).toEqual(['gemini-2.5-flash', 'gemini-2.5-pro', 'gemini-embedding-001']);
    expect(calls.map((call) => new URL(call.url).pathname)).toEqual(['/v1beta/models', '/v1beta/models']);
    expect(new URL(calls[1]?.url ?? '').searchParams.get('pageToken')).toBe('page-2');
    for (const call of calls) expectKeyOnlyInHeader(call);
  });

  test('embeddings: one batchEmbedContents request per input, dimensions → outputDimensionality, usage estimated', async () => {
    const { fetch, calls } = fakeFetch(() => Response.json({ embeddings: [{ values: [0.5, -1] }, { values: [0.25, 2] }] }));
    const adapter = createGoogleAdapter({ fetch });
    const result = await adapter.embeddings?.(
      { model: 'gemini-embedding-001', input: ['abcdefgh', 'abc'], dimensions: 2 },
      callContext({}, 'gemini-embedding-001'),
    );
    expect(calls[0]?.url).toBe('https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents');
    expectKeyOnlyInHeader(calls[0] as RecordedCall);
    expect(calls[0]?.body).toEqual({
      requests: [
        { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'abcdefgh' }] }, outputDimensionality: 2 },
        { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'abc' }] }, outputDimensionality: 2 },
      ],
    });
    expect(result?.data).toEqual([
      { index: 0, embedding: [0.5, -1] },
      { index: 1, embedding: [0.25, 2] },
    ]);
    expect(result?.usage.inputTokens).toBe(3);
    const base64 = await adapter.embeddings?.(
      { model: 'gemini-embedding-001', input: 'x', encoding_format: 'base64' },
      callContext({}, 'gemini-embedding-001'),
    );
    expect(Array.from(new Float32Array(Buffer.from(base64?.data[0]?.embedding as string, 'base64').buffer.slice(0)))).toEqual([0.5, -1]);
  });

  test('embeddings refuse token-id input', async () => {
    const { fetch, calls } = fakeFetch(() => Response.json({}));
    const failure = await createGoogleAdapter({ fetch })
      .embeddings?.({ model: 'm', input: [1, 2, 3] }, callContext())
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KeywayError);
    expect(calls).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end against the Gemini simulator (validates requests the way the real API does)

describe('adapter against the Gemini simulator', () => {
  const simulator = startGoogleSimulator({ apiKeys: [API_KEY] });
  const adapter = createGoogleAdapter({ fetch, baseUrl: simulator.url });
  const context = (model = 'gemini-2.5-flash', settings: ProviderKeySettings = {}) => callContext(settings, model);
  const weatherTool: ChatRequest['tools'] = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Weather for a city',
        strict: true,
        parameters: { type: 'object', additionalProperties: false, properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];
  afterAll(() => simulator.stop());
  beforeEach(() => simulator.reset());

  afterEach(() => {
    expect(simulator.urlKeyRequests()).toHaveLength(0);
    for (const request of simulator.state.requests) expect(request.headers['x-goog-api-key']).toBe(API_KEY);
  });

  test('chat, not streamed', async () => {
    const result = await adapter.chat(HELLO, context());
    expect(result.choices[0]?.message.content).toBe('Echo: Hello');
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'stop', raw: 'STOP' });
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.model).toBe('gemini-2.5-flash');
  });

  test('chat, streamed', async () => {
    const parts = await collect(await adapter.chatStream(HELLO, context()));
    const text = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('');
    expect(text).toBe('Echo: Hello');
    expect(parts.filter((part) => part.type === 'finish')).toEqual([{ type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'STOP' } }]);
    expect(parts.at(-1)?.type).toBe('usage');
  });

  for (const streamed of [false, true]) {
    test(`tool round trip on Gemini 3 with thought signatures (${streamed ? 'streamed' : 'not streamed'})`, async () => {
      const ask: ChatRequest = {
        model: 'gemini-3-pro-preview',
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools: weatherTool,
        reasoning_effort: 'low',
      };
      const toolCalls = streamed
        ? toolCallsFromParts(await collect(await adapter.chatStream(ask, context('gemini-3-pro-preview'))))
        : ((await adapter.chat(ask, context('gemini-3-pro-preview'))).choices[0]?.message.tool_calls ?? []);
      expect(toolCalls).toHaveLength(1);
      expect(toolCalls[0]?.function.name).toBe('get_weather');
      expect(toolCalls[0]?.id).toContain('__thought__');
      const followUp: ChatRequest = {
        ...ask,
        messages: [
          ...ask.messages,
          { role: 'assistant', content: null, tool_calls: toolCalls },
          { role: 'tool', tool_call_id: toolCalls[0]?.id ?? '', content: 'Sunny, 21°C' },
        ],
      };
      const answer = await adapter.chat(followUp, context('gemini-3-pro-preview'));
      expect(answer.choices[0]?.message.content).toBe('Tool results: Sunny, 21°C');
      expect(answer.usage.reasoningTokens).toBeGreaterThan(0);
    });
  }

  test('a schema full of JSON-Schema-only keywords is accepted once cleaned; a named tool_choice forces the call', async () => {
    const cases = await fixture<Array<{ request: ChatRequest }>>('request-cases.json');
    const schemaCase = cases.find((testCase) => testCase.request.tool_choice !== undefined && typeof testCase.request.tool_choice === 'object');
    const result = await adapter.chat({ ...(schemaCase?.request as ChatRequest) }, context('gemini-2.5-pro'));
    expect(result.choices[0]?.message.tool_calls?.[0]?.function.name).toBe('book');
    expect(result.choices[0]?.finishReason.unified).toBe('tool-calls');
  });

  test('a blocked prompt is a content-filter result, not a failure', async () => {
    const result = await adapter.chat({ ...HELLO, messages: [{ role: 'user', content: 'please trigger safety block' }] }, context());
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'content-filter', raw: 'SAFETY' });
  });

  test('a malformed function call: an error result not streamed, an error part after the usage streamed', async () => {
    const ask: ChatRequest = { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'please trigger malformed function call' }], tools: weatherTool };
    const result = await adapter.chat(ask, context());
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'error', raw: 'MALFORMED_FUNCTION_CALL' });
    const parts = await collect(await adapter.chatStream(ask, context()));
    expect(parts.map((part) => part.type)).toEqual(['start', 'usage', 'error']);
    expect(parts.at(-1)).toMatchObject({ error: { code: 'upstream_error', reason: 'server_error', status: 502 } });
  });

  test('key settings and the safety level are accepted by the API', async () => {
    const result = await adapter.chat(HELLO, context('gemini-2.5-flash', { safety_settings: 'medium', temperature_default: 0.3, max_tokens_default: 200 }));
    expect(result.choices[0]?.message.content).toBe('Echo: Hello');
    const sent = simulator.inferenceRequests()[0]?.body as { generationConfig?: unknown; safetySettings?: unknown[] };
    expect(sent.generationConfig).toEqual({ temperature: 0.3, maxOutputTokens: 200 });
    expect(sent.safetySettings).toHaveLength(5);
  });

  const failures: Array<[string, Fault, string]> = [
    ['rate limit', { kind: 'rate_limit', retryAfterSeconds: 3 }, 'rate_limit'],
    ['daily quota', { kind: 'quota' }, 'quota_exceeded'],
    ['bad key', { kind: 'auth' }, 'auth_error'],
    ['unknown model', { kind: 'model_not_found' }, 'model_not_available'],
    ['context too long', { kind: 'context_length' }, 'context_length_exceeded'],
    ['overloaded', { kind: 'overloaded' }, 'server_error'],
    ['connection reset', { kind: 'reset' }, 'server_error'],
  ];
  for (const [name, fault, reason] of failures) {
    test(`failure before the first byte: ${name}`, async () => {
      simulator.inject(fault);
      const failure = await adapter.chatStream(HELLO, context()).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(KeywayError);
      expect((failure as KeywayError).reason).toBe(reason as KeywayError['reason']);
      if (fault.kind === 'rate_limit') expect((failure as KeywayError).retryAfterSeconds).toBe(3);
    });
  }

  for (const kind of ['mid_stream_error', 'mid_stream_reset'] as const) {
    test(`failure after the first byte (${kind}) ends with an error part and no finish`, async () => {
      simulator.inject({ kind, afterChunks: 1 });
      const parts = await collect(await adapter.chatStream({ ...HELLO, messages: [{ role: 'user', content: 'a rather long question to stream' }] }, context()));
      expect(parts.at(-1)?.type).toBe('error');
      expect(parts.some((part) => part.type === 'finish')).toBe(false);
    });
  }

  test('models and embeddings', async () => {
    const names = await adapter.listModels(credential(), new AbortController().signal);
    expect(names).toContain('gemini-2.5-flash');
    expect(names).toContain('gemini-embedding-001');
    const embeddings = await adapter.embeddings?.({ model: 'gemini-embedding-001', input: ['one', 'two'], dimensions: 8 }, context('gemini-embedding-001'));
    expect(embeddings?.data.map((entry) => (entry.embedding as number[]).length)).toEqual([8, 8]);
  });
});

function toolCallsFromParts(parts: StreamPart[]): ToolCall[] {
  const calls: ToolCall[] = [];
  for (const part of parts) {
    if (part.type === 'tool-call-start') calls[part.toolIndex] = { id: part.id, type: 'function', function: { name: part.name, arguments: '' } };
    if (part.type === 'tool-call-delta' && calls[part.toolIndex] !== undefined) (calls[part.toolIndex] as ToolCall).function.arguments += part.argumentsDelta;
  }
  return calls;
}
