// Checks the OpenAI simulator itself with plain fetch: auth, validation, deterministic answers,
// embeddings and models. Streaming and faults live in openai-stream.test.ts.

import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { countTokens } from './common.ts';
import { promptTokensFor } from './openai-behaviour.ts';
import { embeddingVector } from './openai-embeddings.ts';
import { startOpenAISimulator } from './openai.ts';
import { postJson } from './openai-test-helpers.ts';

const simulator = startOpenAISimulator();
const key = 'openai-test-key';
const auth = { authorization: `Bearer ${key}` };
const chatUrl = `${simulator.url}/v1/chat/completions`;
const user = (content: unknown) => ({ role: 'user', content });
const chat = (body: Record<string, unknown>, headers: Record<string, string> = auth) =>
  postJson(chatUrl, { model: 'gpt-4o', messages: [user('hello')], ...body }, headers);

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        days: { type: 'integer' },
        metric: { type: 'boolean' },
        tags: { type: 'array' },
        extra: { type: 'object' },
        note: { type: 'string' },
      },
      required: ['city', 'days', 'metric', 'tags', 'extra'],
    },
  },
};
const timeTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: ['string', 'null'] } }, required: ['zone'] } },
};

beforeEach(() => simulator.reset());
afterAll(() => simulator.stop());

async function expectError(
  response: Response,
  status: number,
  expected: { message?: string | RegExp; param?: string | null; code?: string | null; type?: string },
) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  if (expected.message instanceof RegExp) expect(String(body.error.message)).toMatch(expected.message);
  else if (expected.message !== undefined) expect(body.error.message).toBe(expected.message);
  if (expected.param !== undefined) expect(body.error.param).toBe(expected.param);
  if (expected.code !== undefined) expect(body.error.code).toBe(expected.code);
  expect(body.error.type).toBe(expected.type ?? 'invalid_request_error');
}

describe('auth', () => {
  test('a missing key is refused', async () => {
    await expectError(await chat({}, {}), 401, { message: /^You didn't provide an API key/, code: 'invalid_api_key' });
  });

  test('a wrong key is refused and shown masked', async () => {
    const response = await chat({}, { authorization: 'Bearer sk-wrong-secret-key-9xyz' });
    const text = await response.text();
    expect(text).not.toContain('secret');
    await expectError(new Response(text, { status: response.status }), 401, {
      message: /^Incorrect API key provided: sk-\*+9xyz\. /,
      code: 'invalid_api_key',
      param: null,
    });
  });

  test('models need a key too', async () => {
    expect((await fetch(`${simulator.url}/v1/models`)).status).toBe(401);
  });

  test('OpenAI-Organization is recorded as received', async () => {
    await chat({}, { ...auth, 'OpenAI-Organization': 'org-keyway' });
    const [recorded] = simulator.inferenceRequests();
    expect(recorded?.headers['openai-organization']).toBe('org-keyway');
    expect(recorded?.headers.authorization).toBe(`Bearer ${key}`);
  });
});

describe('chat validation', () => {
  const cases: Array<[string, unknown, number, { message?: string | RegExp; param?: string | null; code?: string | null }]> = [
    ['unparsable JSON', '{"model":', 400, { message: /^We could not parse the JSON body/ }],
    [
      'gateway field provider',
      { model: 'gpt-4o', messages: [user('hi')], provider: 'openai' },
      400,
      { message: 'Unrecognized request argument supplied: provider', param: null },
    ],
    ['gateway field routing', { model: 'gpt-4o', messages: [user('hi')], routing: {} }, 400, { message: 'Unrecognized request argument supplied: routing' }],
    ['missing model', { messages: [user('hi')] }, 400, { message: 'you must provide a model parameter' }],
    ['model not a string', { model: 4, messages: [user('hi')] }, 400, { param: 'model', code: 'invalid_type' }],
    ['missing messages', { model: 'gpt-4o' }, 400, { message: "Missing required parameter: 'messages'.", code: 'missing_required_parameter' }],
    ['empty messages', { model: 'gpt-4o', messages: [] }, 400, { param: 'messages', code: 'empty_array' }],
    [
      'bad role',
      { model: 'gpt-4o', messages: [{ role: 'bot', content: 'x' }] },
      400,
      { message: /^Invalid value: 'bot'\. Supported values are: 'system', .*and 'developer'\.$/, param: 'messages[0].role', code: 'invalid_value' },
    ],
    ['missing content', { model: 'gpt-4o', messages: [{ role: 'user' }] }, 400, { param: 'messages[0].content' }],
    [
      'image part in a system message',
      { model: 'gpt-4o', messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }, user('hi')] },
      400,
      { param: 'messages[0].content[0].type' },
    ],
    [
      'tool message without tool_calls',
      { model: 'gpt-4o', messages: [user('hi'), { role: 'tool', tool_call_id: 'call_1', content: 'x' }] },
      400,
      { message: /must be a response to a preceeding message with 'tool_calls'/, param: 'messages.[1].role' },
    ],
    [
      'tool message without tool_call_id',
      { model: 'gpt-4o', messages: [user('hi'), { role: 'tool', content: 'x' }] },
      400,
      { param: 'messages[1].tool_call_id' },
    ],
    [
      'tool_call_id not among the calls',
      {
        model: 'gpt-4o',
        messages: [
          user('hi'),
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'call_2', content: 'x' },
        ],
      },
      400,
      { param: 'messages.[2].tool_call_id' },
    ],
    [
      'unanswered tool calls',
      {
        model: 'gpt-4o',
        messages: [
          user('hi'),
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          user('again'),
        ],
      },
      400,
      { message: /did not have response messages: call_1$/ },
    ],
    [
      'tool-call arguments as an object',
      {
        model: 'gpt-4o',
        messages: [
          user('hi'),
          { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: {} } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'x' },
        ],
      },
      400,
      { param: 'messages[1].tool_calls[0].function.arguments', code: 'invalid_type' },
    ],
    [
      'temperature above 2',
      { model: 'gpt-4o', messages: [user('hi')], temperature: 2.5 },
      400,
      { message: "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead.", code: 'decimal_above_max_value' },
    ],
    ['temperature below 0', { model: 'gpt-4o', messages: [user('hi')], temperature: -1 }, 400, { param: 'temperature', code: 'decimal_below_min_value' }],
    ['top_p above 1', { model: 'gpt-4o', messages: [user('hi')], top_p: 1.5 }, 400, { param: 'top_p' }],
    ['n of 0', { model: 'gpt-4o', messages: [user('hi')], n: 0 }, 400, { param: 'n', code: 'integer_below_min_value' }],
    ['n of 129', { model: 'gpt-4o', messages: [user('hi')], n: 129 }, 400, { param: 'n', code: 'integer_above_max_value' }],
    [
      'five stop sequences',
      { model: 'gpt-4o', messages: [user('hi')], stop: ['a', 'b', 'c', 'd', 'e'] },
      400,
      { param: 'stop', code: 'array_above_max_length' },
    ],
    [
      'stream_options without stream',
      { model: 'gpt-4o', messages: [user('hi')], stream_options: { include_usage: true } },
      400,
      { message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: 'stream_options' },
    ],
    [
      'tool name with a space',
      { model: 'gpt-4o', messages: [user('hi')], tools: [{ type: 'function', function: { name: 'get weather' } }] },
      400,
      { param: 'tools[0].function.name', message: /does not match pattern/ },
    ],
    [
      'tool name of 65 characters',
      { model: 'gpt-4o', messages: [user('hi')], tools: [{ type: 'function', function: { name: 'a'.repeat(65) } }] },
      400,
      { code: 'string_above_max_length' },
    ],
    ['empty tools', { model: 'gpt-4o', messages: [user('hi')], tools: [] }, 400, { param: 'tools', code: 'empty_array' }],
    ['tool_choice without tools', { model: 'gpt-4o', messages: [user('hi')], tool_choice: 'auto' }, 400, { param: 'tool_choice' }],
    ['parallel_tool_calls without tools', { model: 'gpt-4o', messages: [user('hi')], parallel_tool_calls: false }, 400, { param: 'parallel_tool_calls' }],
    [
      'forced tool that is not offered',
      { model: 'gpt-4o', messages: [user('hi')], tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'nope' } } },
      400,
      { param: 'tool_choice.function.name' },
    ],
    [
      'json_object without the word json',
      { model: 'gpt-4o', messages: [user('hi')], response_format: { type: 'json_object' } },
      400,
      { param: 'messages', message: /must contain the word 'json'/ },
    ],
    [
      'json_schema without a name',
      { model: 'gpt-4o', messages: [user('hi')], response_format: { type: 'json_schema', json_schema: { schema: {} } } },
      400,
      { param: 'response_format.json_schema.name' },
    ],
    [
      'max_tokens on a reasoning model',
      { model: 'o4-mini', messages: [user('hi')], max_tokens: 10 },
      400,
      { param: 'max_tokens', code: 'unsupported_parameter' },
    ],
    [
      'temperature on a reasoning model',
      { model: 'gpt-5', messages: [user('hi')], temperature: 0.2 },
      400,
      { param: 'temperature', code: 'unsupported_value' },
    ],
    [
      'unknown model',
      { model: 'gpt-9', messages: [user('hi')] },
      404,
      { message: 'The model `gpt-9` does not exist or you do not have access to it.', code: 'model_not_found' },
    ],
    ['embedding model on chat', { model: 'text-embedding-3-small', messages: [user('hi')] }, 404, { message: /^This is not a chat model/ }],
  ];
  for (const [name, body, status, expected] of cases) {
    test(name, async () => {
      await expectError(await postJson(chatUrl, body, auth), status, expected);
    });
  }

  test('null optional parameters are accepted like absent ones', async () => {
    const response = await chat({ temperature: null, stream_options: null, stop: null, tools: null, n: null });
    expect(response.status).toBe(200);
  });

  test('a custom model list replaces the defaults', async () => {
    const custom = startOpenAISimulator({ models: ['my-model'] });
    try {
      expect((await postJson(`${custom.url}/v1/chat/completions`, { model: 'my-model', messages: [user('x')] }, auth)).status).toBe(200);
      expect((await postJson(`${custom.url}/v1/chat/completions`, { model: 'gpt-4o', messages: [user('x')] }, auth)).status).toBe(404);
    } finally {
      await custom.stop();
    }
  });
});

describe('chat answers', () => {
  test('plain text echoes the last user message with the exact response shape', async () => {
    const messages = [{ role: 'system', content: 'Be brief.' }, user('What is up?')];
    const response = await postJson(chatUrl, { model: 'gpt-4o', messages }, auth);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, any>;
    expect(Object.keys(body).sort()).toEqual(['choices', 'created', 'id', 'model', 'object', 'service_tier', 'system_fingerprint', 'usage']);
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('gpt-4o');
    expect(body.service_tier).toBe('default');
    expect(body.system_fingerprint).toMatch(/^fp_/);
    expect(body.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: 'Echo: What is up?', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' },
    ]);
    const promptTokens = countTokens('Be brief.What is up?') + 6;
    expect(promptTokens).toBe(promptTokensFor(messages));
    expect(body.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: countTokens('Echo: What is up?'),
      total_tokens: promptTokens + countTokens('Echo: What is up?'),
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
  });

  test('successful answers carry the request-id, version and rate-limit headers', async () => {
    const first = await chat({});
    const second = await chat({});
    expect(first.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(first.headers.get('openai-version')).toBe('2020-10-01');
    expect(Number(first.headers.get('openai-processing-ms'))).toBeGreaterThanOrEqual(0);
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('10000');
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('2000000');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('9999');
    expect(second.headers.get('x-ratelimit-remaining-requests')).toBe('9998');
    expect(Number(first.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(2_000_000);
    expect(first.headers.get('x-ratelimit-reset-requests')).toBe('6ms');
    expect(first.headers.get('x-ratelimit-reset-tokens')).toMatch(/^\d+(ms|s)$/);
  });

  test('text parts are concatenated and images counted', async () => {
    const content = [
      { type: 'text', text: 'Look at ' },
      { type: 'image_url', image_url: { url: 'https://x.example/a.png' } },
      { type: 'text', text: 'these' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
    ];
    const body = (await (await chat({ messages: [user(content)] })).json()) as Record<string, any>;
    expect(body.choices[0].message.content).toBe('Echo: Look at these [images: 2]');
  });

  test('a tool is called with its required properties filled by type', async () => {
    const body = (await (await chat({ tools: [weatherTool, timeTool] })).json()) as Record<string, any>;
    const choice = body.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const [call] = choice.message.tool_calls;
    expect(call.id).toMatch(/^call_[A-Za-z0-9]+$/);
    expect(call.type).toBe('function');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'sample', days: 1, metric: true, tags: [], extra: {} });
    expect(body.usage.completion_tokens).toBe(countTokens(call.function.arguments));
  });

  test('a forced tool is the one called', async () => {
    const body = (await (await chat({ tools: [weatherTool, timeTool], tool_choice: { type: 'function', function: { name: 'get_time' } } })).json()) as Record<
      string,
      any
    >;
    expect(body.choices[0].message.tool_calls.map((call: any) => call.function.name)).toEqual(['get_time']);
    expect(JSON.parse(body.choices[0].message.tool_calls[0].function.arguments)).toEqual({ zone: 'sample' });
  });

  test('"call all tools" calls every tool in parallel with distinct ids', async () => {
    const body = (await (await chat({ messages: [user('Please call all tools')], tools: [weatherTool, timeTool] })).json()) as Record<string, any>;
    const calls = body.choices[0].message.tool_calls;
    expect(calls.map((call: any) => call.function.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((call: any) => call.id)).size).toBe(2);
  });

  test('parallel_tool_calls:false limits "call all tools" to one call', async () => {
    const body = (await (await chat({ messages: [user('call all tools')], tools: [weatherTool, timeTool], parallel_tool_calls: false })).json()) as Record<
      string,
      any
    >;
    expect(body.choices[0].message.tool_calls).toHaveLength(1);
  });

  test('tool_choice none answers in text', async () => {
    const body = (await (await chat({ tools: [weatherTool], tool_choice: 'none' })).json()) as Record<string, any>;
    expect(body.choices[0].message.content).toBe('Echo: hello');
    expect(body.choices[0].message.tool_calls).toBeUndefined();
  });

  test('tool results are summarised', async () => {
    const calls = [
      { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
      { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
    ];
    const messages = [
      user('weather?'),
      { role: 'assistant', content: null, tool_calls: calls },
      { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_b', content: [{ type: 'text', text: 'noon' }] },
    ];
    const body = (await (await chat({ messages, tools: [weatherTool, timeTool] })).json()) as Record<string, any>;
    expect(body.choices[0].message.content).toBe('Tool results: sunny | noon');
    expect(body.choices[0].finish_reason).toBe('stop');
  });

  test('JSON response formats answer with a JSON echo', async () => {
    const schema = { type: 'json_schema', json_schema: { name: 'echo', schema: { type: 'object' } } };
    for (const format of [{ type: 'json_object' }, schema]) {
      const body = (await (await chat({ messages: [user('reply in json')], response_format: format })).json()) as Record<string, any>;
      expect(JSON.parse(body.choices[0].message.content)).toEqual({ echo: 'reply in json' });
    }
  });

  test('max_tokens and max_completion_tokens truncate with finish_reason length', async () => {
    for (const limit of [{ max_tokens: 2 }, { max_completion_tokens: 2 }]) {
      const body = (await (await chat({ messages: [user('a fairly long question')], ...limit })).json()) as Record<string, any>;
      expect(body.choices[0].message.content).toBe('Echo: a ');
      expect(body.choices[0].finish_reason).toBe('length');
      expect(body.usage.completion_tokens).toBe(2);
    }
  });

  test('stop sequences cut the reply', async () => {
    const body = (await (await chat({ messages: [user('one two three')], stop: ['three', 'two'] })).json()) as Record<string, any>;
    expect(body.choices[0].message.content).toBe('Echo: one ');
    expect(body.choices[0].finish_reason).toBe('stop');
  });

  test('a repeated prompt_cache_key reports half the prompt as cached', async () => {
    const first = (await (await chat({ prompt_cache_key: 'conversation-1' })).json()) as Record<string, any>;
    const second = (await (await chat({ prompt_cache_key: 'conversation-1' })).json()) as Record<string, any>;
    expect(first.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(second.usage.prompt_tokens_details.cached_tokens).toBe(Math.floor(second.usage.prompt_tokens / 2));
  });

  test('n choices are indexed and billed together', async () => {
    const body = (await (await chat({ n: 2 })).json()) as Record<string, any>;
    expect(body.choices.map((choice: any) => choice.index)).toEqual([0, 1]);
    expect(body.usage.completion_tokens).toBe(2 * countTokens('Echo: hello'));
  });
});

describe('embeddings', () => {
  const embeddingsUrl = `${simulator.url}/v1/embeddings`;
  const embed = (body: Record<string, unknown>) => postJson(embeddingsUrl, { model: 'text-embedding-3-small', ...body }, auth);

  test('text gives deterministic unit vectors and usage', async () => {
    const response = await embed({ input: ['alpha', 'beta'] });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('9999');
    const body = (await response.json()) as Record<string, any>;
    expect(body.object).toBe('list');
    expect(body.model).toBe('text-embedding-3-small');
    expect(body.data.map((item: any) => [item.object, item.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
    ]);
    expect(body.data[0].embedding).toEqual(embeddingVector('alpha'));
    expect(body.data[0].embedding).toHaveLength(8);
    expect(body.data[0].embedding).not.toEqual(body.data[1].embedding);
    const norm = Math.hypot(...body.data[0].embedding);
    expect(norm).toBeCloseTo(1, 5);
    expect(body.usage).toEqual({ prompt_tokens: countTokens('alpha') + countTokens('beta'), total_tokens: countTokens('alpha') + countTokens('beta') });
  });

  test('dimensions sets the width and token arrays are accepted', async () => {
    const body = (await (await embed({ input: [[1, 2, 3], [4]], dimensions: 16 })).json()) as Record<string, any>;
    expect(body.data[0].embedding).toHaveLength(16);
    expect(body.usage.prompt_tokens).toBe(4);
  });

  test('base64 is little-endian float32 of the same vector', async () => {
    const body = (await (await embed({ input: 'gamma', encoding_format: 'base64' })).json()) as Record<string, any>;
    const bytes = Buffer.from(body.data[0].embedding, 'base64');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const decoded = Array.from({ length: bytes.byteLength / 4 }, (_, index) => view.getFloat32(index * 4, true));
    expect(decoded).toEqual(embeddingVector('gamma'));
  });

  const invalid: Array<[string, Record<string, unknown>, number, { message?: string | RegExp; param?: string | null; code?: string | null }]> = [
    ['missing input', {}, 400, { message: "Missing required parameter: 'input'." }],
    ['empty string', { input: '' }, 400, { message: /^'\$\.input' is invalid/ }],
    ['mixed input', { input: ['a', 1] }, 400, { message: /^'\$\.input' is invalid/ }],
    ['2049 items', { input: Array.from({ length: 2049 }, () => 'x') }, 400, { param: 'input', code: 'array_above_max_length' }],
    ['unknown encoding', { input: 'x', encoding_format: 'hex' }, 400, { param: 'encoding_format', code: 'invalid_value' }],
    ['too many dimensions', { input: 'x', dimensions: 5000 }, 400, { param: 'dimensions' }],
    ['gateway field', { input: 'x', provider: 'openai' }, 400, { message: 'Unrecognized request argument supplied: provider' }],
    ['chat model', { input: 'x', model: 'gpt-4o' }, 400, { param: 'model' }],
    ['unknown model', { input: 'x', model: 'text-embedding-9' }, 404, { code: 'model_not_found' }],
    ['an input over 8192 tokens', { input: 'x'.repeat(4 * 8193) }, 400, { message: /maximum context length is 8192 tokens/ }],
  ];
  for (const [name, body, status, expected] of invalid) {
    test(`rejects ${name}`, async () => {
      await expectError(await embed(body), status, expected);
    });
  }
});

describe('models and routes', () => {
  test('lists every model in OpenAI shape', async () => {
    const body = (await (await fetch(`${simulator.url}/v1/models`, { headers: auth })).json()) as Record<string, any>;
    expect(body.object).toBe('list');
    expect(body.data.map((model: any) => model.id)).toContain('gpt-4o');
    expect(body.data.map((model: any) => model.id)).toContain('text-embedding-3-large');
    expect(Object.keys(body.data[0]).sort()).toEqual(['created', 'id', 'object', 'owned_by']);
    expect(body.data[0].object).toBe('model');
  });

  test('retrieves one model or answers model_not_found', async () => {
    const found = (await (await fetch(`${simulator.url}/v1/models/gpt-4o-mini`, { headers: auth })).json()) as Record<string, any>;
    expect(found).toMatchObject({ id: 'gpt-4o-mini', object: 'model' });
    await expectError(await fetch(`${simulator.url}/v1/models/gpt-9`, { headers: auth }), 404, { code: 'model_not_found', param: 'model' });
  });

  test('unknown routes answer Invalid URL', async () => {
    await expectError(await postJson(`${simulator.url}/v1/completions`, {}, auth), 404, { message: 'Invalid URL (POST /v1/completions)' });
  });

  test('model listings are not inference requests', async () => {
    await fetch(`${simulator.url}/v1/models`, { headers: auth });
    expect(simulator.inferenceRequests()).toHaveLength(0);
    expect(simulator.state.requests).toHaveLength(1);
  });
});
