import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import type { KeywayError } from '../../core/errors.ts';
import { standaloneServices } from '../../core/services.ts';
import { createLogger } from '../../core/logger.ts';

const silentServicesLogger = createLogger('silent', { write: () => undefined } as never);
import type { Logger } from '../../core/logger.ts';
import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatMessage, ChatRequest, StreamPart } from '../../core/spec/vocabulary.ts';
import { classifyPerplexityError } from '../../providers/perplexity/errors.ts';
import { createPerplexityAdapter, perplexityProviderPlugin } from '../../providers/perplexity/index.ts';
import { normalizePerplexityMessages } from '../../providers/perplexity/messages.ts';
import { PERPLEXITY_DOCUMENTED_MODELS } from '../../providers/perplexity/models.ts';
import { buildPerplexityChatBody } from '../../providers/perplexity/request.ts';
import { parsePerplexityChatResponse } from '../../providers/perplexity/response.ts';
import { perplexityStreamParts } from '../../providers/perplexity/stream.ts';
import { unreportedPerplexityUsage, type PerplexityUsage } from '../../providers/perplexity/usage.ts';
import { PERPLEXITY_CITATIONS, startPerplexitySimulator } from '../simulators/perplexity.ts';
import { collect, fakeFetch, providerTestKit, streamOf, type ErrorCase, type RequestCase } from './provider-test-kit.ts';

const { fixtureText, fixtureJson, credential, callContext } = providerTestKit('perplexity', 'pk_pplx', 'perplexity-test-key');
const streamOfPieces = (text: string, pieceSize = 17) => streamOf(text, pieceSize);

function textOf(parts: StreamPart[]): string {
  return parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join('');
}

describe('perplexity request translation (fixtures)', async () => {
  const fixture = await fixtureJson<{ cases: RequestCase[] }>('request-cases.json');
  for (const testCase of fixture.cases) {
    test(testCase.name, () => {
      const warnings: string[] = [];
      const body = buildPerplexityChatBody(testCase.request, testCase.request.model, testCase.settings ?? {}, warnings);
      expect(body).toEqual(testCase.expected);
      expect(warnings).toEqual(testCase.warnings);
    });
  }

  test('normalising never changes the caller’s messages', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    const snapshot = structuredClone(messages);
    expect(normalizePerplexityMessages(messages)).toEqual([{ role: 'user', content: 'a\n\nb' }]);
    expect(messages).toEqual(snapshot);
  });

  test('a named tool that is not offered is refused', () => {
    const request: ChatRequest = {
      model: 'sonar',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [],
      tool_choice: { type: 'function', function: { name: 'missing' } },
    };
    expect(() => buildPerplexityChatBody(request, 'sonar', {}, [])).toThrow("names the function 'missing'");
  });
});

describe('perplexity responses (fixtures)', () => {
  test('citations, search results, images and related questions become extra fields; usage keeps the cost', async () => {
    const body = await fixtureJson<Record<string, unknown>>('chat-response.json');
    const result = parsePerplexityChatResponse(body);
    expect(result.id).toBe('3c90c3cc-0d44-4b50-8888-8dd25736052a');
    expect(result.model).toBe('sonar');
    expect(result.created).toBe(1722186391);
    expect(result.choices[0]?.message.content).toBe('The Milky Way contains an estimated 100 to 400 billion stars [1][2].');
    expect(result.choices[0]?.finishReason).toEqual({ unified: 'stop', raw: 'stop' });
    expect(result.usage).toEqual({
      inputTokens: 17,
      outputTokens: 65,
      totalTokens: 82,
      cachedInputTokens: 0,
      cacheWriteInputTokens: 0,
      reasoningTokens: 0,
      providerCostUsd: 0.005082,
      searchContextSize: 'low',
      searchQueries: 1,
    });
    expect(result.extraFields).toEqual({
      citations: body.citations,
      search_results: body.search_results,
      images: body.images,
      related_questions: body.related_questions,
      usage_details: body.usage,
    });
    expect((result.extraFields?.usage_details as PerplexityUsage).cost?.request_cost).toBe(0.005);
    expect(result.openAIBody).toBeUndefined();
  });

  test('reasoning tokens, reported beside completion tokens, are counted inside the output', async () => {
    const result = parsePerplexityChatResponse(await fixtureJson('chat-response-deep-research.json'));
    expect(result.usage).toEqual({
      inputTokens: 108,
      outputTokens: 3256 + 73248,
      totalTokens: 108 + 3256 + 73248,
      cachedInputTokens: 0,
      cacheWriteInputTokens: 0,
      reasoningTokens: 73248,
      providerCostUsd: 0.630606,
      citationTokens: 7299,
      searchQueries: 74,
      searchContextSize: 'low',
    });
    expect((result.extraFields?.usage_details as PerplexityUsage).cost?.total_cost).toBe(0.630606);
  });
});

describe('perplexity stream (fixtures)', () => {
  const signal = new AbortController().signal;

  test('search fields are sent when they first appear and when they grow; usage comes last', async () => {
    const parts = await collect(perplexityStreamParts(streamOfPieces(await fixtureText('stream-search.sse')), signal));
    expect(parts[0]).toEqual({ type: 'start', id: 'b7e5c1d4', model: 'sonar', created: 1753363230 });
    expect(textOf(parts)).toBe('The Milky Way has 100-400 billion stars [1][2].');
    const extras = parts.filter((part): part is Extract<StreamPart, { type: 'extra-fields' }> => part.type === 'extra-fields');
    expect(extras).toHaveLength(3);
    expect(extras[0]?.fields.citations).toEqual(['https://science.nasa.gov/milky-way']);
    expect(extras[1]?.fields.citations).toEqual(['https://science.nasa.gov/milky-way', 'https://www.esa.int/galaxy']);
    expect((extras[1]?.fields.search_results as unknown[]).length).toBe(2);
    expect(extras[2]?.fields.usage_details).toMatchObject({ num_search_queries: 1, cost: { request_cost: 0.005 } });
    expect(parts.filter((part) => part.type === 'finish')).toEqual([{ type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'stop' } }]);
    // usage_details rides on the finish chunk, never on a chunk of its own that a client did not ask for.
    expect(parts.slice(-3).map((part) => part.type)).toEqual(['extra-fields', 'finish', 'usage']);
    expect(parts.at(-1)).toEqual({
      type: 'usage',
      usage: {
        inputTokens: 9,
        outputTokens: 14,
        totalTokens: 23,
        cachedInputTokens: 0,
        cacheWriteInputTokens: 0,
        reasoningTokens: 0,
        providerCostUsd: 0.005023,
        searchContextSize: 'low',
        searchQueries: 1,
      },
    });
  });

  test('event: error ends the stream with an error part', async () => {
    const parts = await collect(perplexityStreamParts(streamOfPieces(await fixtureText('stream-error.sse')), signal));
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'error']);
    expect(parts.at(-1)).toMatchObject({
      type: 'error',
      error: { reason: 'server_error', extra: { provider: 'perplexity', upstream_type: 'internal_error' } },
    });
  });

  test('a close after a finish is a normal end, without [DONE]', async () => {
    const parts = await collect(perplexityStreamParts(streamOfPieces(await fixtureText('stream-close-after-finish.sse')), signal));
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'extra-fields', 'finish', 'usage']);
    expect(parts[3]).toEqual({ type: 'finish', index: 0, finishReason: { unified: 'length', raw: 'length' } });
  });

  test('usage that comes after the finish, on a closing chunk, still goes before it', async () => {
    const parts = await collect(perplexityStreamParts(streamOfPieces(await fixtureText('stream-usage-after-finish.sse')), signal));
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'extra-fields', 'finish', 'usage']);
    expect(parts[2]).toEqual({ type: 'extra-fields', fields: { usage_details: expect.objectContaining({ total_tokens: 7, cost: expect.any(Object) }) } });
    expect(parts[4]).toMatchObject({ type: 'usage', usage: { inputTokens: 5, outputTokens: 2, providerCostUsd: 0.005012 } });
  });

  test('a connection reset after the finish keeps the finish: with the usage the answer is whole, without it an error follows', async () => {
    const text = await fixtureText('stream-close-after-finish.sse');
    const withoutUsage = text.replace(/"usage":\{[^}]*\},/, '');
    for (const [body, expected] of [
      [text, ['start', 'text-delta', 'extra-fields', 'finish', 'usage']],
      // Without usage the parts still name the search depth (the request fee), the counts left to estimate.
      [withoutUsage, ['start', 'text-delta', 'finish', 'usage', 'error']],
    ] as const) {
      const bytes = new TextEncoder().encode(body);
      let sent = false;
      const reset = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) return controller.error(new TypeError('socket connection was closed unexpectedly'));
          sent = true;
          controller.enqueue(bytes);
        },
      });
      const parts = await collect(perplexityStreamParts(reset, signal));
      expect(parts.map((part) => part.type)).toEqual([...expected]);
    }
  });

  test('a close before any finish ends with an error part', async () => {
    const parts = await collect(perplexityStreamParts(streamOfPieces(await fixtureText('stream-truncated.sse')), signal));
    expect(parts.map((part) => part.type)).toEqual(['start', 'text-delta', 'error']);
  });

  test('tool-call deltas become tool-call parts', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'x', model: 'sonar', created: 1, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const text =
      chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'lookup', arguments: '' } }] }, null) +
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"q":1}' } }] }, null) +
      chunk({}, 'tool_calls') +
      'data: [DONE]\n\n';
    const parts = await collect(perplexityStreamParts(streamOfPieces(text), signal));
    expect(parts.slice(1)).toEqual([
      { type: 'tool-call-start', index: 0, toolIndex: 0, id: 'call_a', name: 'lookup' },
      { type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '{"q":1}' },
      { type: 'finish', index: 0, finishReason: { unified: 'tool-calls', raw: 'tool_calls' } },
      // No usage came: the request fee's search depth, and counts for the account stage to estimate.
      { type: 'usage', usage: unreportedPerplexityUsage() },
    ]);
  });
});

describe('perplexity errors (fixtures)', async () => {
  const cases = await fixtureJson<ErrorCase[]>('error-cases.json');
  for (const errorCase of cases) {
    test(`HTTP ${errorCase.status} ${errorCase.code} → ${errorCase.reason}`, () => {
      const bodyText = typeof errorCase.body === 'string' ? errorCase.body : JSON.stringify(errorCase.body);
      const error = classifyPerplexityError(errorCase.status, bodyText, new Headers(errorCase.headers));
      expect(error.reason).toBe(errorCase.reason as NonNullable<KeywayError['reason']>);
      expect(error.code).toBe(errorCase.code as KeywayError['code']);
      expect(error.message).toContain(errorCase.message ?? '');
      expect(error.retryAfterSeconds).toBe(errorCase.retryAfterSeconds);
      expect(error.extra).toMatchObject({ provider: 'perplexity', upstream_status: errorCase.status });
    });
  }
});

describe('perplexity adapter (injected fetch)', () => {
  test('chat posts the translated body to /chat/completions on the bare host', async () => {
    const answer = await fixtureText('chat-response.json');
    const fake = fakeFetch(() => new Response(answer, { headers: { 'x-request-id': 'pplx-1', 'x-ratelimit-remaining-requests': '49' } }));
    const adapter = createPerplexityAdapter({ baseUrl: undefined, fetch: fake.fetch });
    const context = callContext('sonar');
    const result = await adapter.chat(
      {
        model: 'perplexity/sonar',
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ],
        routing: { strategy: 'direct' },
      },
      context,
    );
    expect(fake.calls[0]?.url).toBe('https://api.perplexity.ai/chat/completions');
    expect(fake.calls[0]?.headers.get('authorization')).toBe('Bearer perplexity-test-key');
    expect(fake.calls[0]?.body).toEqual({ model: 'sonar', messages: [{ role: 'user', content: 'a\n\nb' }] });
    expect(result.extraFields?.citations).toHaveLength(2);
    expect(context.upstream).toEqual({ status: 200, requestId: 'pplx-1', rateLimitRemaining: 49 });
  });

  test('a rejected key is an auth error', async () => {
    const fake = fakeFetch(() => Response.json({ error: { message: 'Invalid API key provided.', type: 'unauthorized', code: 401 } }, { status: 401 }));
    const adapter = createPerplexityAdapter({ baseUrl: 'https://pplx.env.example', fetch: fake.fetch });
    await expect(adapter.chat({ model: 'sonar', messages: [{ role: 'user', content: 'hi' }] }, callContext('sonar'))).rejects.toMatchObject({
      code: 'provider_key_rejected',
      reason: 'auth_error',
    });
    expect(fake.calls[0]?.url).toBe('https://pplx.env.example/chat/completions');
  });

  test('listModels reads /v1/models, strips the perplexity/ prefix and leaves other vendors out', async () => {
    const list = await fixtureText('models-list.json');
    const fake = fakeFetch(() => new Response(list));
    const adapter = createPerplexityAdapter({ baseUrl: undefined, fetch: fake.fetch });
    expect(await adapter.listModels(credential(), new AbortController().signal)).toEqual(['sonar', 'sonar-pro', 'sonar-deep-research']);
    expect(fake.calls[0]?.url).toBe('https://api.perplexity.ai/v1/models');
  });

  test('listModels answers the documented models when the route is missing, but not when the key is refused', async () => {
    const missing = createPerplexityAdapter({ baseUrl: undefined, fetch: fakeFetch(() => new Response('Not Found', { status: 404 })).fetch });
    expect(await missing.listModels(credential(), new AbortController().signal)).toEqual([...PERPLEXITY_DOCUMENTED_MODELS]);
    const refused = createPerplexityAdapter({
      baseUrl: undefined,
      fetch: fakeFetch(() => Response.json({ error: { message: 'bad key', type: 'unauthorized', code: 401 } }, { status: 401 })).fetch,
    });
    await expect(refused.listModels(credential(), new AbortController().signal)).rejects.toMatchObject({ reason: 'auth_error' });
  });

  test('the plugin reads KEYWAY_PERPLEXITY_BASE_URL and claims Sonar model names', async () => {
    expect(perplexityProviderPlugin.name).toBe('provider-perplexity');
    const fake = fakeFetch(() => new Response('{"data":[]}'));
    const contributions = await perplexityProviderPlugin.setup?.({
      services: standaloneServices({ logger: silentServicesLogger }),
      config: {},
      logger: {} as Logger,
      fetch: fake.fetch,
      env: { KEYWAY_PERPLEXITY_BASE_URL: 'http://127.0.0.1:9' },
      dataDirectory: '/tmp',
    });
    const provider = contributions ? contributions.provider : undefined;
    expect(provider?.name).toBe('perplexity');
    expect(provider?.defaultBaseUrl).toBe('https://api.perplexity.ai');
    for (const model of ['sonar', 'sonar-deep-research', 'r1-1776']) expect(provider?.modelPatterns.some((pattern) => pattern.test(model))).toBe(true);
    await provider?.listModels(credential(), new AbortController().signal);
    expect(fake.calls[0]?.url).toBe('http://127.0.0.1:9/v1/models');
  });
});

describe('perplexity adapter against the simulator', () => {
  const simulator = startPerplexitySimulator();
  const adapter = createPerplexityAdapter({ baseUrl: simulator.url, fetch });
  beforeEach(() => simulator.reset());
  afterAll(() => simulator.stop());

  /** A conversation Sonar would refuse as sent: adjacent users, a late system message, a user turn after a tool result. */
  const messyConversation: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello.' },
    { role: 'user', content: 'Look something up.' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"keyway"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'Keyway is a gateway.' },
    { role: 'user', content: 'Thanks.' },
    { role: 'assistant', content: 'You are welcome.' },
    { role: 'developer', content: 'Answer in one word.' },
    { role: 'user', content: 'what is keyway' },
  ];

  test('non-streamed: a reshaped conversation passes Sonar validation; citations and cost come back', async () => {
    const context = callContext('sonar');
    const result = await adapter.chat(
      { model: 'sonar', messages: messyConversation, response_format: { type: 'json_object' }, stream_options: { include_usage: true } },
      context,
    );
    expect(simulator.inferenceRequests()).toHaveLength(1);
    expect(result.choices[0]?.message.content).toContain('what is keyway');
    expect(result.extraFields?.citations).toEqual([...PERPLEXITY_CITATIONS]);
    expect(result.extraFields?.search_results).toHaveLength(PERPLEXITY_CITATIONS.length);
    const details = result.extraFields?.usage_details as PerplexityUsage;
    expect(details.cost?.request_cost).toBe(0.005);
    expect(result.usage.inputTokens).toBe(details.prompt_tokens);
    expect(context.warnings).toHaveLength(1);
  });

  test('streamed: text, citations once, finish, then usage with the cost details', async () => {
    const parts = await collect(
      await adapter.chatStream(
        { model: 'sonar-pro', messages: [{ role: 'user', content: 'tell me about keyway streams' }], web_search_options: { search_context_size: 'high' } },
        callContext('sonar-pro'),
      ),
    );
    expect(parts[0]?.type).toBe('start');
    expect(textOf(parts)).toBe('Echo: tell me about keyway streams');
    const extras = parts.filter((part): part is Extract<StreamPart, { type: 'extra-fields' }> => part.type === 'extra-fields');
    expect(extras[0]?.fields.citations).toEqual([...PERPLEXITY_CITATIONS]);
    expect(extras.filter((part) => part.fields.citations !== undefined)).toHaveLength(1);
    expect(extras.at(-1)?.fields.usage_details).toMatchObject({ search_context_size: 'high', cost: { request_cost: 0.014 } });
    expect(parts.filter((part) => part.type === 'finish')).toHaveLength(1);
    expect(parts.at(-1)?.type).toBe('usage');
    expect(parts.some((part) => part.type === 'error')).toBe(false);
  });

  test('a mid-stream error event becomes an error part', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const parts = await collect(
      await adapter.chatStream({ model: 'sonar', messages: [{ role: 'user', content: 'a long enough question to stream' }] }, callContext('sonar')),
    );
    expect(parts.at(-1)).toMatchObject({ type: 'error', error: { reason: 'server_error' } });
    expect(parts.some((part) => part.type === 'finish')).toBe(false);
  });

  test('faults before the first byte reject with their reasons', async () => {
    const request: ChatRequest = { model: 'sonar', messages: [{ role: 'user', content: 'hi' }] };
    simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 4 }, { kind: 'model_not_found' }, { kind: 'context_length' }, { kind: 'quota' });
    await expect(adapter.chat(request, callContext('sonar'))).rejects.toMatchObject({ reason: 'rate_limit', retryAfterSeconds: 4 });
    await expect(adapter.chat(request, callContext('sonar'))).rejects.toMatchObject({ reason: 'model_not_available', code: 'model_not_found' });
    await expect(adapter.chat(request, callContext('sonar'))).rejects.toMatchObject({ reason: 'context_length_exceeded' });
    await expect(adapter.chatStream(request, callContext('sonar'))).rejects.toMatchObject({ reason: 'quota_exceeded' });
    await expect(adapter.chat(request, callContext('sonar', {}, 'pplx-wrong'))).rejects.toMatchObject({ reason: 'auth_error' });
  });

  test('listModels answers the simulator list', async () => {
    expect(await adapter.listModels(credential(), new AbortController().signal)).toEqual(['sonar', 'sonar-pro', 'sonar-reasoning-pro', 'sonar-deep-research']);
  });
});

// Sonar answers 400 "Last message must have role `user` or `tool`" to an Anthropic-style prefill; it went
// upstream and a fallback chain ended on that 400 instead of skipping the candidate (QA20 seed F6).
describe('a conversation that ends with the assistant', () => {
  test('is refused before the call as a feature Sonar lacks, naming the message', () => {
    const request: ChatRequest = {
      model: 'sonar',
      messages: [
        { role: 'user', content: 'Say hi' },
        { role: 'assistant', content: 'Sure,' },
      ],
    };
    let refusal: KeywayError | undefined;
    try {
      buildPerplexityChatBody(request, 'sonar', {}, []);
    } catch (error) {
      refusal = error as KeywayError;
    }
    expect({ code: refusal?.code, param: refusal?.param }).toEqual({ code: 'unsupported_feature', param: 'messages[1]' });
    expect(refusal?.message).toContain('ends with an assistant message');
  });

  test('an assistant turn before the last user message is kept', () => {
    const body = buildPerplexityChatBody(
      {
        model: 'sonar',
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: 'b' },
          { role: 'user', content: 'c' },
        ],
      },
      'sonar',
      {},
      [],
    );
    expect((body.messages as ChatMessage[]).map((message) => message.role)).toEqual(['user', 'assistant', 'user']);
  });
});

describe('choices', () => {
  test('n > 1 is refused: Sonar returns one choice', () => {
    expect(() => buildPerplexityChatBody({ model: 'sonar', n: 2, messages: [{ role: 'user', content: 'x' }] }, 'sonar', {}, [])).toThrow(/n > 1/);
    const body = buildPerplexityChatBody({ model: 'sonar', n: 1, messages: [{ role: 'user', content: 'x' }] }, 'sonar', {}, []);
    expect(body.n).toBeUndefined();
  });
});
