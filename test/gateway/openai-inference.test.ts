import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, expectSpecError, flushUsage, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const UPSTREAM_KEY = 'sk-proj-CanaryOpenAIKey00000000000000000001';
let simulator: SimulatorHandle;
let gateway: TestGateway;
let keyId: string;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  const [stored] = await addProviderKeys(gateway, [
    {
      name: 'openai',
      api_key: UPSTREAM_KEY,
      organization_id: 'org-canary',
      settings: { default_model: 'gpt-4o', max_tokens_default: 400, temperature_default: 0.7 },
    },
  ]);
  keyId = String(stored?.key_id);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

beforeEach(() => simulator.reset());

const chat = (body: Record<string, unknown>, headers: Record<string, string> = {}) => call(gateway, 'POST', '/v1/chat/completions', body, { headers });

describe('non-streaming chat completions', () => {
  test("the seed's direct request works and carries every response header", async () => {
    const response = await chat(
      {
        model: 'gpt-4-turbo-preview',
        provider: 'openai',
        messages: [{ role: 'user', content: 'Hello!' }],
        routing: { strategy: 'direct', use_byok_only: true },
      },
      { 'X-Use-BYOK': 'true' },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }>; usage: { prompt_tokens: number } };
    expect(body.choices[0]?.message.content).toBe('Echo: Hello!');
    expect(body.choices[0]?.finish_reason).toBe('stop');
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-byok-used')).toBe('true');
    expect(response.headers.get('x-model-used')).toBe('gpt-4-turbo-preview');
    expect(response.headers.get('x-key-id')).toBe(keyId);
    expect(response.headers.get('x-fallback-attempts')).toBe('0');
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(Number(response.headers.get('x-keyway-cost'))).toBeGreaterThan(0);
  });

  test('X-Use-BYOK: false without a platform key of the provider says the platform has none, not that the account has none', async () => {
    const response = await chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'platform only' }] }, { 'X-Use-BYOK': 'false' });
    expect(response.status).toBe(503);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('no_provider_available');
    expect(error.message).toContain('X-Use-BYOK: false');
    expect(error.message).toContain('the platform has no openai key');
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  test('Keyway strips its own fields, applies the key defaults and forwards the organization', async () => {
    await chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'defaults' }], routing: { strategy: 'direct' } });
    const [received] = simulator.inferenceRequests();
    const body = received?.body as Record<string, unknown>;
    expect(body.provider).toBeUndefined();
    expect(body.routing).toBeUndefined();
    expect(body.max_tokens).toBe(400);
    expect(body.temperature).toBe(0.7);
    expect(received?.headers['openai-organization']).toBe('org-canary');
    expect(received?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  });

  test('client values win over key defaults', async () => {
    await chat({ model: 'gpt-4o', temperature: 0.1, max_tokens: 9, messages: [{ role: 'user', content: 'mine' }] });
    const body = simulator.inferenceRequests()[0]?.body as Record<string, unknown>;
    expect(body.temperature).toBe(0.1);
    expect(body.max_tokens).toBe(9);
  });

  test('a request naming only a provider gets the key default_model', async () => {
    const response = await chat({ provider: 'openai', messages: [{ role: 'user', content: 'which model' }] });
    expect(response.status).toBe(200);
    expect((simulator.inferenceRequests()[0]?.body as Record<string, unknown>).model).toBe('gpt-4o');
  });

  // QA15 F2: the same model selection on every inbound API that calls a chat model.
  test('/v1/messages and /v1/responses naming only a provider get the key default_model too', async () => {
    const messages = await call(gateway, 'POST', '/v1/messages', { provider: 'openai', max_tokens: 20, messages: [{ role: 'user', content: 'which model' }] });
    expect(messages.status).toBe(200);
    expect(messages.headers.get('x-model-used')).toStartWith('gpt-4o');
    // `provider` is Keyway's own field, read, not ignored.
    expect(messages.headers.get('x-keyway-warnings')).toBeNull();
    const responses = await call(gateway, 'POST', '/v1/responses', { provider: 'openai', input: 'which model' });
    expect(responses.status).toBe(200);
    expect(simulator.inferenceRequests().map((request) => (request.body as Record<string, unknown>).model)).toEqual(['gpt-4o', 'gpt-4o']);
  });

  // QA15 re-verification N1: docs/api.md names the `provider` field "(or X-Provider)".
  test('X-Provider alone picks the key default_model as the provider field does', async () => {
    const before = simulator.inferenceRequests().length;
    for (const [path, body] of [
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'which model' }] }],
      ['/v1/messages', { max_tokens: 20, messages: [{ role: 'user', content: 'which model' }] }],
      ['/v1/responses', { input: 'which model' }],
    ] as const) {
      const response = await call(gateway, 'POST', path, body, { headers: { 'x-provider': 'openai' } });
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
    }
    expect(
      simulator
        .inferenceRequests()
        .slice(before)
        .map((request) => (request.body as Record<string, unknown>).model),
    ).toEqual(['gpt-4o', 'gpt-4o', 'gpt-4o']);
  });

  test('with neither a model nor a provider, every chat API answers missing_field model', async () => {
    for (const [path, body] of [
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }],
      ['/v1/messages', { max_tokens: 20, messages: [{ role: 'user', content: 'x' }] }],
      ['/v1/responses', { input: 'x' }],
    ] as const) {
      const response = await call(gateway, 'POST', path, body);
      expect({ path, status: response.status, text: await response.text() }).toMatchObject({ path, status: 400, text: expect.stringContaining("'model'") });
    }
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  // The 400 blamed the request's `provider` field and never named the key's setting (QA20 seed F4).
  test("a key default_model of another provider's model: the 400 names that key's setting", async () => {
    const created = (await (await call(gateway, 'POST', '/v1/accounts', { name: 'default-model-elsewhere' })).json()) as { admin_key: { api_key: string } };
    const admin = created.admin_key.api_key;
    const [stored] = await addProviderKeys(gateway, [{ name: 'openai', api_key: UPSTREAM_KEY, settings: { default_model: 'claude-3-opus-20240229' } }], admin);
    // Its model listing, read now, is what says OpenAI does not serve the model.
    expect((await call(gateway, 'GET', '/v1/providers', undefined, { key: admin })).status).toBe(200);
    const before = simulator.inferenceRequests().length;
    const response = await call(gateway, 'POST', '/v1/chat/completions', { provider: 'openai', messages: [{ role: 'user', content: 'x' }] }, { key: admin });
    const body = await expectSpecError(response, 400, 'invalid_field');
    expect(body.error.param).toBe('model');
    expect(body.error.message).toContain(`settings.default_model 'claude-3-opus-20240229' of openai key ${String(stored?.key_id)}`);
    expect(body.error.message).toContain("set that key's default_model to an openai model");
    expect(simulator.inferenceRequests()).toHaveLength(before);
  });

  test('embeddings always name their model: a key default_model is a chat model', async () => {
    const response = await call(gateway, 'POST', '/v1/embeddings', { provider: 'openai', input: 'x' });
    const body = await expectSpecError(response, 400, 'missing_field');
    expect(body.error.param).toBe('model');
    expect(body.error.message).toContain('default_model');
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  test('tools, images and response_format pass through', async () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    ];
    const toolResponse = await chat({ model: 'gpt-4o', tools, messages: [{ role: 'user', content: 'weather?' }] });
    const toolBody = (await toolResponse.json()) as {
      choices: Array<{ message: { tool_calls: Array<{ id: string; function: { name: string; arguments: string } }> }; finish_reason: string }>;
    };
    const toolCall = toolBody.choices[0]?.message.tool_calls[0];
    expect(toolBody.choices[0]?.finish_reason).toBe('tool_calls');
    expect(toolCall?.function.name).toBe('get_weather');
    expect(JSON.parse(toolCall?.function.arguments ?? '{}')).toEqual({ city: 'sample' });

    const followUp = await chat({
      model: 'gpt-4o',
      tools,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: toolCall?.id, type: 'function', function: { name: 'get_weather', arguments: toolCall?.function.arguments } }],
        },
        { role: 'tool', tool_call_id: toolCall?.id, content: '{"temp":21}' },
      ],
    });
    expect(((await followUp.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe('Tool results: {"temp":21}');

    const image = await chat({
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    expect(((await image.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe('Echo: what is this [images: 1]');

    const json = await chat({ model: 'gpt-4o', response_format: { type: 'json_object' }, messages: [{ role: 'user', content: 'answer in json' }] });
    const content = ((await json.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content ?? '';
    expect(JSON.parse(content)).toEqual({ echo: 'answer in json' });
  });
});

describe('streaming', () => {
  test('chunks pass through, usage is captured even when the client did not ask, and the usage chunk is withheld', async () => {
    const response = await chat({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'stream to me please' }] });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('x-provider-used')).toBe('openai');
    const events = await readSse(response);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as { choices: Array<{ delta: { content?: string } }>; usage?: unknown });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Echo: stream to me please');
    expect(chunks.every((chunk) => chunk.choices.length > 0)).toBe(true);
    const upstream = simulator.inferenceRequests()[0]?.body as { stream_options?: { include_usage?: boolean } };
    expect(upstream.stream_options?.include_usage).toBe(true);
    await flushUsage(gateway);
    const requestId = response.headers.get('x-request-id');
    const row = (await gateway.runtime.store.listUsage('default')).find((usage) => usage.requestId === requestId);
    expect(row?.inputTokens).toBeGreaterThan(0);
    expect(row?.outputTokens).toBeGreaterThan(0);
    expect(row?.streamed).toBe(true);
  });

  test('the usage chunk reaches a client that asked for it', async () => {
    const response = await chat({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'usage please' }],
    });
    const events = await readSse(response);
    const usageChunk = JSON.parse(events.at(-2) ?? '{}') as { choices: unknown[]; usage: { total_tokens: number } };
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.total_tokens).toBeGreaterThan(0);
  });

  test('each chunk is forwarded as it arrives, not buffered', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 120 });
    const started = performance.now();
    const response = await chat({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a reply long enough for several chunks' }] });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const arrivals: number[] = [];
    while (true) {
      const { done } = await reader.read();
      if (done) break;
      arrivals.push(performance.now() - started);
    }
    expect(arrivals.length).toBeGreaterThan(3);
    // With buffering every chunk would land together at the end; forwarded ones are spread out.
    const spread = (arrivals.at(-1) as number) - (arrivals[0] as number);
    expect(spread).toBeGreaterThan(120 * 2);
  });

  test('an error after the first byte ends the stream with an error event and no [DONE]', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 2 });
    const response = await chat({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'this will break halfway through the answer' }] });
    expect(response.status).toBe(200);
    const events = await readSse(response);
    expect(events).not.toContain('[DONE]');
    const last = JSON.parse(events.at(-1) ?? '{}') as { error?: { type: string; code: string } };
    expect(last.error?.type).toBe('upstream_error');
  });

  test('a stream the provider breaks off after content is booked from the estimate, flagged, never as free', async () => {
    for (const [fault, requestId] of [
      [{ kind: 'mid_stream_error', afterChunks: 3 }, 'broken-by-error'],
      [{ kind: 'mid_stream_reset', afterChunks: 3 }, 'broken-by-reset'],
    ] as const) {
      simulator.inject(fault);
      const response = await chat(
        { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'an answer the provider will not finish' }] },
        { 'x-request-id': requestId },
      );
      expect(response.status).toBe(200);
      await readSse(response);
      await flushUsage(gateway);
      const row = (await gateway.runtime.store.listUsage('default')).find((usage) => usage.requestId === requestId);
      expect(row).toMatchObject({ status: 502, usageEstimated: true });
      expect(row?.inputTokens).toBeGreaterThan(0);
      expect(row?.outputTokens).toBeGreaterThan(0);
      expect(row?.costUsd).toBeGreaterThan(0);
    }
    // Broken off before any content reached the client: nothing was delivered, nothing is estimated.
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 0 });
    const empty = await chat(
      { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'nothing comes back' }] },
      { 'x-request-id': 'broken-at-once' },
    );
    await readSse(empty);
    await flushUsage(gateway);
    const row = (await gateway.runtime.store.listUsage('default')).find((usage) => usage.requestId === 'broken-at-once');
    expect(row?.usageEstimated ?? false).toBe(false);
  });

  test('a connection cut mid-stream also ends with an error event', async () => {
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 2 });
    const response = await chat({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'this will be cut halfway through the answer' }] });
    const events = await readSse(response);
    expect(events).not.toContain('[DONE]');
    expect((JSON.parse(events.at(-1) ?? '{}') as { error?: unknown }).error).toBeDefined();
  });
});

describe('accounting', () => {
  test('a request id the client repeats still gets one usage row per request', async () => {
    const headers = { 'x-request-id': 'client-chosen-id-42' };
    for (let round = 0; round < 2; round++) {
      const response = await chat({ model: 'gpt-4o', messages: [{ role: 'user', content: `round ${round}` }] }, headers);
      expect(response.headers.get('x-request-id')).toBe('client-chosen-id-42');
    }
    await flushUsage(gateway);
    const rows = (await gateway.runtime.store.listUsage('default')).filter((usage) => usage.requestId === 'client-chosen-id-42');
    expect(rows).toHaveLength(2);
  });
});

describe('models and embeddings', () => {
  test('GET /v1/models lists what the keys report, with their provider', async () => {
    const response = await call(gateway, 'GET', '/v1/models');
    const body = (await response.json()) as { object: string; data: Array<{ id: string; owned_by: string }> };
    expect(body.object).toBe('list');
    expect(body.data.find((model) => model.id === 'gpt-4o')?.owned_by).toBe('openai');
  });

  test('POST /v1/embeddings reaches OpenAI and is accounted', async () => {
    const response = await call(gateway, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: ['one', 'two'] });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: Array<{ index: number; embedding: number[] }>; usage: { prompt_tokens: number } };
    expect(body.data).toHaveLength(2);
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-provider-used')).toBe('openai');
  });
});

describe('reasoning models (o-series, gpt-5)', () => {
  const sentBody = (): Record<string, unknown> => (simulator.inferenceRequests()[0]?.body ?? {}) as Record<string, unknown>;

  test("the key's defaults reach them in the form they take: no temperature, max_completion_tokens", async () => {
    const response = await chat({ model: 'gpt-5', messages: [{ role: 'user', content: 'defaults' }], routing: { strategy: 'direct' } });
    expect(response.status).toBe(200);
    const received = sentBody();
    expect(received.temperature).toBeUndefined();
    expect(received.max_tokens).toBeUndefined();
    expect(received.max_completion_tokens).toBe(400);
  });

  test("a client's max_tokens is sent as max_completion_tokens, the same bound", async () => {
    const response = await chat({ model: 'o4-mini', max_tokens: 50, messages: [{ role: 'user', content: 'bounded' }], routing: { strategy: 'direct' } });
    expect(response.status).toBe(200);
    const received = sentBody();
    expect(received.max_tokens).toBeUndefined();
    expect(received.max_completion_tokens).toBe(50);
  });

  test('a temperature the client set for the reasoning model it named is forwarded, and refused as OpenAI refuses it', async () => {
    for (const model of ['gpt-5', 'openai/gpt-5']) {
      simulator.reset();
      const response = await chat({ model, temperature: 0.2, messages: [{ role: 'user', content: 'hot' }], routing: { strategy: 'direct' } });
      expect({ model, status: response.status }).toEqual({ model, status: 400 });
      expect(sentBody().temperature).toBe(0.2);
    }
  });

  test('a request for another class member sent to a reasoning model by cost_optimized keeps its bound and leaves out the sampling it cannot take', async () => {
    const response = await chat({
      model: 'claude-3-opus-20240229',
      temperature: 0.3,
      top_p: 0.9,
      stop: ['END'],
      presence_penalty: 0.5,
      max_tokens: 20,
      messages: [{ role: 'user', content: 'substituted' }],
      routing: { strategy: 'cost_optimized' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('openai');
    const received = sentBody();
    expect(String(received.model)).toMatch(/^(o\d|gpt-5)/);
    expect(received.temperature).toBeUndefined();
    expect(received.top_p).toBeUndefined();
    expect(received.stop).toBeUndefined();
    expect(received.presence_penalty).toBeUndefined();
    expect(received.max_completion_tokens).toBe(20);
  });

  test('each field left out for a reasoning substitute is named in X-Keyway-Warnings, streamed or not (QA18: dropped silently)', async () => {
    for (const stream of [false, true]) {
      simulator.reset();
      const response = await chat({
        model: 'claude-3-opus-20240229',
        temperature: 0.3,
        stop: ['world'],
        logprobs: true,
        top_logprobs: 2,
        // false and null ask for nothing: no warning for them.
        frequency_penalty: null,
        messages: [{ role: 'user', content: 'hello world and more' }],
        routing: { strategy: 'cost_optimized' },
        stream,
      });
      expect(response.status).toBe(200);
      if (stream) await readSse(response);
      else await response.json();
      expect(sentBody().stop).toBeUndefined();
      const warnings = response.headers.get('x-keyway-warnings') ?? '';
      for (const name of ['temperature', 'stop', 'logprobs', 'top_logprobs'])
        expect({ stream, warned: warnings.includes(`openai: ignored '${name}'`) }).toEqual({ stream, warned: true });
      expect(warnings).not.toContain('frequency_penalty');
      expect(warnings).toContain('is a reasoning model');
    }
  });
});
