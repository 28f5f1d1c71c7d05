import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import { standaloneServices } from '../../core/services.ts';
import { createLogger } from '../../core/logger.ts';

const silentServicesLogger = createLogger('silent', { write: () => undefined } as never);
import type { Logger } from '../../core/logger.ts';
import type { CallContext, ProviderAdapter, ProviderCredential, ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest, StreamPart } from '../../core/spec/vocabulary.ts';
import { buildCohereEmbedBody, encodeEmbedding } from '../../providers/cohere/embeddings.ts';
import { classifyCohereError } from '../../providers/cohere/errors.ts';
import { mapCohereFinishReason } from '../../providers/cohere/finish-reason.ts';
import { cohereProviderPlugin, createCohereAdapter } from '../../providers/cohere/index.ts';
import { buildCohereChatBody } from '../../providers/cohere/request.ts';
import { parseCohereChatResponse } from '../../providers/cohere/response.ts';
import { cohereStreamParts } from '../../providers/cohere/stream.ts';
import { usageFromCohere } from '../../providers/cohere/usage.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { collect, fakeFetch, providerTestKit, streamOf, type RecordedCall, type ErrorCase, type RequestCase } from './provider-test-kit.ts';

interface RefusedCase {
  name: string;
  request: ChatRequest;
  code: string;
  param: string;
}

const { fixtureText, fixtureJson, credential, callContext } = providerTestKit('cohere', 'pk_cohere', 'cohere-test-key');

const SSE_HEADERS = { 'content-type': 'text/event-stream' };

describe('cohere request translation (fixtures)', async () => {
  const fixture = await fixtureJson<{ cases: RequestCase[]; refused: RefusedCase[] }>('request-cases.json');

  for (const testCase of fixture.cases) {
    test(testCase.name, () => {
      const warnings: string[] = [];
      const body = buildCohereChatBody(testCase.request, testCase.request.model, testCase.settings ?? {}, warnings);
      expect(body).toEqual(testCase.expected);
      expect(warnings).toEqual(testCase.warnings);
    });
  }

  for (const refused of fixture.refused) {
    test(`refuses ${refused.name}`, () => {
      let caught: unknown;
      try {
        buildCohereChatBody(refused.request, refused.request.model, {}, []);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(KeywayError);
      expect((caught as KeywayError).code).toBe(refused.code as KeywayError['code']);
      expect((caught as KeywayError).param).toBe(refused.param);
      expect((caught as KeywayError).status).toBe(400);
    });
  }

  test('an echoed tool_plan wins over the assistant content', () => {
    const request: ChatRequest = {
      model: 'command-a-03-2025',
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: 'ignored text',
          tool_plan: 'the plan',
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: 'sunny' }] },
      ],
    };
    const body = buildCohereChatBody(request, 'command-a-03-2025', {}, []);
    const messages = body.messages as Array<Record<string, unknown>>;
    expect(messages[1]).toEqual({
      role: 'assistant',
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }],
      tool_plan: 'the plan',
    });
    expect(messages[2]).toEqual({ role: 'tool', tool_call_id: 'c1', content: 'sunny' });
  });
});

describe('cohere responses (fixtures)', () => {
  test('joins text blocks and reports billed units as usage', async () => {
    const body = await fixtureJson<Record<string, unknown>>('chat-response.json');
    const result = parseCohereChatResponse(body, 'command-a-03-2025');
    expect(result.id).toBe('c14c80c3-18eb-4519-9460-6c92edd8cfb4');
    expect(result.model).toBe('command-a-03-2025');
    expect(result.choices).toHaveLength(1);
    expect(result.choices[0]?.message).toEqual({
      role: 'assistant',
      content: 'LLMs stand for Large Language Models, which are a type of neural network model specialized in processing and generating human language.',
    });
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'stop', raw: 'COMPLETE' });
    expect(result.usage).toEqual({ inputTokens: 5, outputTokens: 418, totalTokens: 423, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 });
    expect(result.extraFields?.usage_details).toEqual(body.usage);
    expect(result.openAIBody).toBeUndefined();
  });

  test('keeps tool calls as JSON strings and the tool plan on the message', async () => {
    const result = parseCohereChatResponse(await fixtureJson('chat-response-tool-call.json'), 'command-a-03-2025');
    const message = result.choices[0]?.message;
    expect(message?.content).toBeNull();
    expect(message?.tool_plan).toBe('I will search for the weather in Madrid and Brasilia.');
    expect(message?.tool_calls).toEqual([
      { id: 'get_weather_nsz5zm3w56q3', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Madrid"}' } },
      { id: 'get_weather_2ra8mzmjz4mb', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Brasilia"}' } },
    ]);
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'tool-calls', raw: 'TOOL_CALL' });
    expect(result.usage).toMatchObject({ inputTokens: 37, outputTokens: 28, totalTokens: 65, cachedInputTokens: 12 });
  });

  test('thinking blocks become reasoning_content', () => {
    const result = parseCohereChatResponse(
      {
        id: 'x',
        finish_reason: 'COMPLETE',
        message: {
          content: [
            { type: 'thinking', thinking: 'Let me think.' },
            { type: 'text', text: 'Answer.' },
          ],
        },
      },
      'command-a-reasoning-08-2025',
    );
    expect(result.choices[0]?.message).toEqual({ role: 'assistant', content: 'Answer.', reasoning_content: 'Let me think.' });
  });

  test('a body without a message is a server error', () => {
    expect(() => parseCohereChatResponse({ id: 'x' }, 'command-a-03-2025')).toThrow(KeywayError);
  });

  test('finish reasons map to the unified set and keep the raw value', () => {
    // Cohere says a stop sequence fired, not which: `null` says so.
    expect(mapCohereFinishReason('STOP_SEQUENCE')).toEqual({ unified: 'stop', raw: 'STOP_SEQUENCE', stopSequence: null });
    expect(mapCohereFinishReason('COMPLETE')).toEqual({ unified: 'stop', raw: 'COMPLETE' });
    expect(mapCohereFinishReason('MAX_TOKENS')).toEqual({ unified: 'length', raw: 'MAX_TOKENS' });
    expect(mapCohereFinishReason('ERROR')).toEqual({ unified: 'error', raw: 'ERROR' });
    expect(mapCohereFinishReason('TIMEOUT')).toEqual({ unified: 'error', raw: 'TIMEOUT' });
    expect(mapCohereFinishReason('SOMETHING_NEW')).toEqual({ unified: 'other', raw: 'SOMETHING_NEW' });
    expect(mapCohereFinishReason(undefined)).toEqual({ unified: 'other', raw: undefined });
  });

  test('usage prefers billed units, falls back to tokens and keeps cached tokens a subset', () => {
    expect(usageFromCohere({ tokens: { input_tokens: 71, output_tokens: 9 } })).toMatchObject({ inputTokens: 71, outputTokens: 9, totalTokens: 80 });
    expect(usageFromCohere({ billed_units: { input_tokens: 5, output_tokens: 2 }, cached_tokens: 60 })).toMatchObject({ inputTokens: 5, cachedInputTokens: 5 });
    expect(usageFromCohere(undefined)).toBeUndefined();
  });
});

describe('cohere stream (fixtures)', () => {
  const signal = new AbortController().signal;

  test('text stream without [DONE]', async () => {
    const parts = await collect(cohereStreamParts(streamOf(await fixtureText('stream-text.sse')), 'command-a-03-2025', signal));
    expect(parts[0]).toMatchObject({ type: 'start', id: '29f14a5a-11de-4cae-9800-25e4747408ea', model: 'command-a-03-2025' });
    expect(parts.slice(1)).toEqual([
      { type: 'text-delta', index: 0, text: 'Hello' },
      { type: 'text-delta', index: 0, text: '! How can I help you today?' },
      {
        type: 'extra-fields',
        fields: { usage_details: { billed_units: { input_tokens: 3, output_tokens: 9 }, tokens: { input_tokens: 69, output_tokens: 9 }, cached_tokens: 0 } },
      },
      { type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'COMPLETE' } },
      { type: 'usage', usage: { inputTokens: 3, outputTokens: 9, totalTokens: 12, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 } },
    ]);
  });

  test('tool calls: single-object tool_calls keyed by index, tool plan as an extra field, [DONE] accepted', async () => {
    const parts = await collect(cohereStreamParts(streamOf(await fixtureText('stream-tool-call.sse'), 5), 'command-a-03-2025', signal));
    const calls = parts.filter((part) => part.type === 'tool-call-start' || part.type === 'tool-call-delta');
    expect(calls).toEqual([
      { type: 'tool-call-start', index: 0, toolIndex: 0, id: 'get_weather_nsz5zm3w56q3', name: 'get_weather' },
      { type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '{"location":' },
      { type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '"Madrid"}' },
      { type: 'tool-call-start', index: 0, toolIndex: 1, id: 'get_weather_2ra8mzmjz4mb', name: 'get_weather' },
      { type: 'tool-call-delta', index: 0, toolIndex: 1, argumentsDelta: '{"location":"Brasilia"}' },
    ]);
    const extra = parts.find((part) => part.type === 'extra-fields');
    expect(extra).toMatchObject({ fields: { tool_plan: 'I will search for the weather in Madrid and Brasilia.' } });
    expect(parts.at(-2)).toEqual({ type: 'finish', index: 0, finishReason: { unified: 'tool-calls', raw: 'TOOL_CALL' } });
    expect(parts.at(-1)).toMatchObject({ type: 'usage', usage: { inputTokens: 37, outputTokens: 28 } });
    expect(parts.some((part) => part.type === 'error')).toBe(false);
  });

  test('message-end with an error ends in an error part after usage, never a finish (CRLF framing)', async () => {
    const parts = await collect(cohereStreamParts(streamOf(await fixtureText('stream-error.sse'), 7), 'command-a-03-2025', signal));
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'extra-fields', 'usage', 'error']);
    const last = parts.at(-1);
    expect(last?.type === 'error' && last.error).toMatchObject({
      reason: 'server_error',
      code: 'upstream_error',
      extra: { provider: 'cohere', upstream_type: 'ERROR' },
    });
    expect(last?.type === 'error' && last.error.message).toContain('internal generation error');
  });

  test('a TIMEOUT finish is a timeout error', async () => {
    const text = 'data: {"type":"message-start","id":"t"}\n\ndata: {"type":"message-end","delta":{"finish_reason":"TIMEOUT"}}\n\n';
    const parts = await collect(cohereStreamParts(streamOf(text), 'command-r', signal));
    expect(parts.at(-1)).toMatchObject({ type: 'error', error: { reason: 'timeout', code: 'upstream_timeout' } });
  });

  test('a stream cut before message-end ends with an error part', async () => {
    const parts = await collect(cohereStreamParts(streamOf(await fixtureText('stream-truncated.sse')), 'command-a-03-2025', signal));
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'error']);
    expect(parts.at(-1)).toMatchObject({ error: { reason: 'server_error' } });
  });

  test('an event whose payload lost its type is read by its event name', async () => {
    const text =
      'event: message-start\ndata: {"id":"m1"}\n\nevent: content-delta\ndata: {"delta":{"message":{"content":{"text":"hi"}}}}\n\nevent: message-end\ndata: {"delta":{"finish_reason":"MAX_TOKENS"}}\n\n';
    const parts = await collect(cohereStreamParts(streamOf(text), 'command-r', signal));
    expect(parts).toMatchObject([
      { type: 'start', id: 'm1' },
      { type: 'text-delta', text: 'hi' },
      { type: 'finish', finishReason: { unified: 'length', raw: 'MAX_TOKENS' } },
    ]);
  });

  test('a payload that is not JSON ends with an error part', async () => {
    const parts = await collect(cohereStreamParts(streamOf('data: {not json\n\n'), 'command-r', signal));
    expect(parts).toHaveLength(1);
    expect(parts[0]).toMatchObject({ type: 'error', error: { reason: 'server_error' } });
  });
});

describe('cohere errors (fixtures)', async () => {
  const cases = await fixtureJson<ErrorCase[]>('error-cases.json');
  for (const errorCase of cases) {
    test(`HTTP ${errorCase.status} → ${errorCase.reason}`, () => {
      const bodyText = typeof errorCase.body === 'string' ? errorCase.body : JSON.stringify(errorCase.body);
      const error = classifyCohereError(errorCase.status, bodyText, new Headers(errorCase.headers));
      expect(error.reason).toBe(errorCase.reason as NonNullable<KeywayError['reason']>);
      expect(error.code).toBe(errorCase.code as KeywayError['code']);
      expect(error.retryAfterSeconds).toBe(errorCase.retryAfterSeconds);
      expect(error.extra).toMatchObject({ provider: 'cohere', upstream_status: errorCase.status });
      if (typeof errorCase.body === 'object' && errorCase.body !== null) expect(error.message).toContain((errorCase.body as { message: string }).message);
    });
  }
});

describe('cohere embeddings helpers', () => {
  test('builds a v2 embed body with document input type and float embeddings', () => {
    expect(buildCohereEmbedBody({ model: 'embed-v4.0', input: 'x', dimensions: 512 }, 'embed-v4.0', ['hello'])).toEqual({
      model: 'embed-v4.0',
      texts: ['hello'],
      input_type: 'search_document',
      embedding_types: ['float'],
      output_dimension: 512,
    });
    expect(buildCohereEmbedBody({ model: 'e', input: 'x', input_type: 'search_query' }, 'e', ['q']).input_type).toBe('search_query');
  });

  test('base64 encoding is little-endian float32, as OpenAI sends it', () => {
    const encoded = encodeEmbedding([1, -2.5], 'base64') as string;
    const bytes = Buffer.from(encoded, 'base64');
    expect(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 2))).toEqual([1, -2.5]);
    expect(encodeEmbedding([1, 2], 'float')).toEqual([1, 2]);
  });
});

describe('cohere adapter (injected fetch)', () => {
  test('chat posts to /v2/chat with the key and answers the parsed result', async () => {
    const answer = await fixtureText('chat-response.json');
    const fake = fakeFetch(() => new Response(answer, { status: 200, headers: { 'content-type': 'application/json', 'x-request-id': 'upstream-1' } }));
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const context = callContext('command-a-03-2025', { max_tokens_default: 100 });
    const result = await adapter.chat(
      { model: 'cohere/command-a-03-2025', messages: [{ role: 'user', content: 'Tell me about LLMs' }], provider: 'cohere', routing: { strategy: 'direct' } },
      context,
    );
    expect(fake.calls).toHaveLength(1);
    const call = fake.calls[0] as RecordedCall;
    expect(call.url).toBe('https://api.cohere.com/v2/chat');
    expect(call.method).toBe('POST');
    expect(call.headers.get('authorization')).toBe('Bearer cohere-test-key');
    expect(call.headers.get('accept')).toBe('application/json');
    expect(call.body).toEqual({ model: 'command-a-03-2025', messages: [{ role: 'user', content: 'Tell me about LLMs' }], max_tokens: 100 });
    expect(result.usage.outputTokens).toBe(418);
    expect(context.upstream).toEqual({ status: 200, requestId: 'upstream-1' });
  });

  test('the key base_url wins over the environment, which wins over the default', async () => {
    const answer = await fixtureText('chat-response.json');
    const fake = fakeFetch(() => new Response(answer));
    const adapter = createCohereAdapter({ baseUrl: 'https://cohere.env.example/', fetch: fake.fetch });
    const request: ChatRequest = { model: 'command-r', messages: [{ role: 'user', content: 'hi' }] };
    await adapter.chat(request, callContext('command-r'));
    await adapter.chat(request, callContext('command-r', { base_url: 'https://cohere.key.example' }));
    expect(fake.calls.map((call) => call.url)).toEqual(['https://cohere.env.example/v2/chat', 'https://cohere.key.example/v2/chat']);
  });

  test('chatStream asks for SSE and yields parts', async () => {
    const sse = await fixtureText('stream-text.sse');
    const fake = fakeFetch(() => new Response(streamOf(sse), { headers: SSE_HEADERS }));
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const parts = await collect(
      await adapter.chatStream(
        { model: 'command-r', messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: true } },
        callContext('command-r'),
      ),
    );
    expect(fake.calls[0]?.body).toMatchObject({ stream: true });
    expect(fake.calls[0]?.body).not.toHaveProperty('stream_options');
    expect(fake.calls[0]?.headers.get('accept')).toBe('text/event-stream');
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'text-delta', 'extra-fields', 'finish', 'usage']);
  });

  test('an upstream 429 rejects with a classified error and Retry-After', async () => {
    const fake = fakeFetch(() => Response.json({ message: 'You are past the per minute request limit' }, { status: 429, headers: { 'retry-after': '3' } }));
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const failure = adapter.chat({ model: 'command-r', messages: [{ role: 'user', content: 'hi' }] }, callContext('command-r'));
    await expect(failure).rejects.toMatchObject({ code: 'upstream_rate_limited', reason: 'rate_limit', retryAfterSeconds: 3 });
  });

  test('an unsupported request fails before any upstream call, and warnings reach the context', async () => {
    const fake = fakeFetch(() => new Response('{}'));
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    await expect(adapter.chat({ model: 'command-r', messages: [{ role: 'user', content: 'hi' }], n: 3 }, callContext('command-r'))).rejects.toMatchObject({
      code: 'unsupported_feature',
    });
    expect(fake.calls).toHaveLength(0);
    const answer = await fixtureText('chat-response.json');
    const answering = fakeFetch(() => new Response(answer));
    const context = callContext('command-r');
    await createCohereAdapter({ baseUrl: undefined, fetch: answering.fetch }).chat(
      { model: 'command-r', messages: [{ role: 'user', content: 'hi' }], logit_bias: { '1': 2 } },
      context,
    );
    expect(context.warnings).toEqual(["cohere: 'logit_bias' is not supported and was dropped"]);
  });

  test('embeddings batch 96 texts a call, keep indexes and sum billed tokens', async () => {
    const fake = fakeFetch((call) => {
      const texts = (call.body as { texts: string[] }).texts;
      return Response.json({
        id: 'e',
        embeddings: { float: texts.map((_text, position) => [position, 0.5]) },
        meta: { billed_units: { input_tokens: texts.length * 2 } },
        response_type: 'embeddings_by_type',
      });
    });
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const input = Array.from({ length: 100 }, (_unused, position) => `text ${position}`);
    const result = await adapter.embeddings?.({ model: 'embed-v4.0', input }, callContext('embed-v4.0'));
    expect(fake.calls.map((call) => call.url)).toEqual(['https://api.cohere.com/v2/embed', 'https://api.cohere.com/v2/embed']);
    expect(fake.calls.map((call) => (call.body as { texts: string[] }).texts.length)).toEqual([96, 4]);
    expect(result?.data).toHaveLength(100);
    expect(result?.data[97]).toEqual({ index: 97, embedding: [1, 0.5] });
    expect(result?.usage).toMatchObject({ inputTokens: 200, totalTokens: 200, outputTokens: 0 });
  });

  test('embeddings answer the documented example in OpenAI shape', async () => {
    const answer = await fixtureText('embed-response.json');
    const fake = fakeFetch(() => new Response(answer));
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const result = await adapter.embeddings?.({ model: 'embed-english-v3.0', input: ['hello', 'goodbye'] }, callContext('embed-english-v3.0'));
    expect(result).toEqual({
      model: 'embed-english-v3.0',
      data: [
        { index: 0, embedding: [0.016296387, -0.008354187, -0.04699707] },
        { index: 1, embedding: [-0.0045394897, 0.0546875, 0.016235352] },
      ],
      usage: { inputTokens: 2, outputTokens: 0, totalTokens: 2, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
    });
  });

  test('token-id embedding input is refused', async () => {
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fakeFetch(() => new Response('{}')).fetch });
    await expect(adapter.embeddings?.({ model: 'embed-v4.0', input: [1, 2, 3] }, callContext('embed-v4.0')) as Promise<unknown>).rejects.toMatchObject({
      code: 'unsupported_feature',
    });
  });

  test('listModels follows next_page_token', async () => {
    const pages = [await fixtureText('models-page-1.json'), await fixtureText('models-page-2.json')];
    const fake = fakeFetch((_call, position) => new Response(pages[position]));
    const adapter = createCohereAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const names = await adapter.listModels(credential(), new AbortController().signal);
    expect(names).toEqual(['command-a-03-2025', 'command-r-plus-08-2024', 'embed-v4.0']);
    expect(fake.calls.map((call) => call.url)).toEqual([
      'https://api.cohere.com/v1/models?page_size=1000',
      'https://api.cohere.com/v1/models?page_size=1000&page_token=page-2',
    ]);
  });

  test('the plugin reads KEYWAY_COHERE_BASE_URL and serves the Cohere model names', async () => {
    expect(cohereProviderPlugin.name).toBe('provider-cohere');
    const answer = await fixtureText('chat-response.json');
    const fake = fakeFetch(() => new Response(answer));
    const contributions = await cohereProviderPlugin.setup?.({
      services: standaloneServices({ logger: silentServicesLogger }),
      config: {},
      logger: {} as Logger,
      fetch: fake.fetch,
      env: { KEYWAY_COHERE_BASE_URL: 'http://127.0.0.1:9' },
      dataDirectory: '/tmp',
    });
    const provider = contributions ? contributions.provider : undefined;
    expect(provider?.name).toBe('cohere');
    expect(provider?.defaultBaseUrl).toBe('https://api.cohere.com');
    for (const model of ['command-r-plus', 'c4ai-aya-expanse-32b', 'embed-v4.0'])
      expect(provider?.modelPatterns.some((pattern) => pattern.test(model))).toBe(true);
    await provider?.chat({ model: 'command-r', messages: [{ role: 'user', content: 'hi' }] }, callContext('command-r'));
    expect(fake.calls[0]?.url).toBe('http://127.0.0.1:9/v2/chat');
  });
});

// The Cohere simulator is written alongside this adapter; these tests run once it exists.
interface CohereSimulatorModule {
  startCohereSimulator(options?: { apiKeys?: string[] }): SimulatorHandle;
}

async function loadCohereSimulator(): Promise<CohereSimulatorModule | undefined> {
  const location = new URL('../simulators/cohere.ts', import.meta.url);
  if (!(await Bun.file(location).exists())) return undefined;
  return (await import(location.href)) as CohereSimulatorModule;
}

const cohereSimulator = await loadCohereSimulator();

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Gets the weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe.skipIf(cohereSimulator === undefined)('cohere adapter against the simulator', () => {
  let simulator: SimulatorHandle;
  let adapter: ProviderAdapter;
  beforeAll(() => {
    simulator = (cohereSimulator as CohereSimulatorModule).startCohereSimulator();
    adapter = createCohereAdapter({ baseUrl: simulator.url, fetch });
  });
  beforeEach(() => simulator.reset());
  afterAll(() => simulator.stop());

  const model = 'command-a-03-2025';

  test('non-streamed: the system message goes first and the answer comes back with billed usage', async () => {
    const result = await adapter.chat(
      {
        model,
        messages: [
          { role: 'user', content: 'what is keyway' },
          { role: 'system', content: 'Be brief.' },
        ],
        stream_options: { include_usage: true },
      },
      callContext(model),
    );
    const sent = simulator.inferenceRequests()[0]?.body as { messages: Array<{ role: string }> };
    expect(sent.messages.map((message) => message.role)).toEqual(['system', 'user']);
    expect(typeof result.choices[0]?.message.content).toBe('string');
    expect(String(result.choices[0]?.message.content).length).toBeGreaterThan(0);
    expect(result.choices[0]?.finishReason.unified).toBe('stop');
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.usage.totalTokens).toBe(result.usage.inputTokens + result.usage.outputTokens);
  });

  test('streamed: start, text, finish and usage, without an error', async () => {
    const parts = await collect(await adapter.chatStream({ model, messages: [{ role: 'user', content: 'tell me about keyway streams' }] }, callContext(model)));
    expect(parts[0]?.type).toBe('start');
    expect(parts.filter((part) => part.type === 'text-delta').length).toBeGreaterThan(0);
    expect(parts.filter((part) => part.type === 'finish')).toHaveLength(1);
    expect(parts.some((part) => part.type === 'usage')).toBe(true);
    expect(parts.some((part) => part.type === 'error')).toBe(false);
  });

  test('a tool round trip, non-streamed', async () => {
    const question: ChatRequest = { model, messages: [{ role: 'user', content: 'weather in Paris?' }], tools: [WEATHER_TOOL], tool_choice: 'required' };
    const first = await adapter.chat(question, callContext(model));
    const calls = first.choices[0]?.message.tool_calls ?? [];
    expect(first.choices[0]?.finishReason.unified).toBe('tool-calls');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0]?.function.name).toBe('get_weather');
    expect(() => JSON.parse(calls[0]?.function.arguments ?? '')).not.toThrow();
    const followUp: ChatRequest = {
      model,
      tools: [WEATHER_TOOL],
      messages: [
        ...question.messages,
        { role: 'assistant', content: null, tool_calls: calls, tool_plan: first.choices[0]?.message.tool_plan },
        ...calls.map((call) => ({ role: 'tool' as const, tool_call_id: call.id, content: '{"temperature":"21C"}' })),
      ],
    };
    const second = await adapter.chat(followUp, callContext(model));
    expect(second.choices[0]?.finishReason.unified).toBe('stop');
    expect(String(second.choices[0]?.message.content).length).toBeGreaterThan(0);
  });

  test('a tool round trip, streamed', async () => {
    const question: ChatRequest = {
      model,
      messages: [{ role: 'user', content: 'weather in Oslo?' }],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    };
    const parts = await collect(await adapter.chatStream(question, callContext(model)));
    const starts = parts.filter((part): part is Extract<StreamPart, { type: 'tool-call-start' }> => part.type === 'tool-call-start');
    expect(starts.length).toBeGreaterThan(0);
    const argumentsText = parts.map((part) => (part.type === 'tool-call-delta' && part.toolIndex === 0 ? part.argumentsDelta : '')).join('');
    expect(() => JSON.parse(argumentsText)).not.toThrow();
    expect(parts.find((part) => part.type === 'finish')).toMatchObject({ finishReason: { unified: 'tool-calls' } });
    const first = starts[0] as Extract<StreamPart, { type: 'tool-call-start' }>;
    const followUp: ChatRequest = {
      model,
      tools: [WEATHER_TOOL],
      messages: [
        ...question.messages,
        { role: 'assistant', content: null, tool_calls: [{ id: first.id, type: 'function', function: { name: first.name, arguments: argumentsText } }] },
        { role: 'tool', tool_call_id: first.id, content: '{"temperature":"3C"}' },
      ],
    };
    const answer = await collect(await adapter.chatStream(followUp, callContext(model)));
    expect(answer.filter((part) => part.type === 'text-delta').length).toBeGreaterThan(0);
    expect(answer.find((part) => part.type === 'finish')).toMatchObject({ finishReason: { unified: 'stop' } });
  });

  test('faults map to their failure reasons', async () => {
    const request: ChatRequest = { model, messages: [{ role: 'user', content: 'hi' }] };
    simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 2 }, { kind: 'model_not_found' }, { kind: 'server_error' });
    await expect(adapter.chat(request, callContext(model))).rejects.toMatchObject({ reason: 'rate_limit' });
    await expect(adapter.chat(request, callContext(model))).rejects.toMatchObject({ reason: 'model_not_available' });
    await expect(adapter.chatStream(request, callContext(model))).rejects.toMatchObject({ reason: 'server_error' });
    await expect(adapter.chat(request, callContext(model, {}, 'cohere-wrong-key'))).rejects.toMatchObject({ reason: 'auth_error' });
  });

  test('a mid-stream failure ends the stream with an error part', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const parts = await collect(
      await adapter.chatStream({ model, messages: [{ role: 'user', content: 'a question long enough to stream' }] }, callContext(model)),
    );
    expect(parts.at(-1)?.type).toBe('error');
    expect(parts.some((part) => part.type === 'finish')).toBe(false);
  });
});
