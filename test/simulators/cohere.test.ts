import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { startCohereSimulator } from './cohere.ts';
import type { Fault } from './common.ts';
import { countTokens } from './common.ts';

const simulator = startCohereSimulator();
const goodHeaders = { 'content-type': 'application/json', authorization: 'Bearer cohere-test-key' };
const base = { model: 'command-a-03-2025' };
const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] },
  },
};
const clock = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
};

afterAll(() => simulator.stop());
beforeEach(() => simulator.reset());

async function post(body: unknown, path = '/v2/chat', headers: Record<string, string> = goodHeaders) {
  const response = await fetch(`${simulator.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
}

async function expectRejected(body: unknown, status: number, fragment: string, path = '/v2/chat') {
  const response = await post(body, path);
  expect(response.status).toBe(status);
  expect(response.json).toEqual({ id: expect.any(String), message: expect.any(String) });
  expect(response.json.message).toContain(fragment);
}

const user = (content: unknown) => ({ role: 'user', content });
const hi = [user('hi')];

function events(text: string): { event: string; data: any }[] {
  return text
    .split('\n\n')
    .filter((chunk) => chunk.trim().length > 0)
    .map((chunk) => ({ event: /^event: (.*)$/m.exec(chunk)?.[1] ?? '', data: JSON.parse(/^data: (.*)$/m.exec(chunk)?.[1] ?? 'null') }));
}

describe('authentication', () => {
  test('bearer key required', async () => {
    const missing = await post({ ...base, messages: hi }, '/v2/chat', { 'content-type': 'application/json' });
    expect([missing.status, missing.json.message]).toEqual([401, 'no api key supplied']);
    const wrong = await post({ ...base, messages: hi }, '/v2/chat', { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toEqual({ id: expect.any(String), message: 'invalid api token' });
  });
});

describe('request validation', () => {
  test('model and messages are required; unknown models are 404', async () => {
    await expectRejected({ messages: hi }, 400, 'invalid request: model is required');
    await expectRejected({ ...base }, 400, 'messages is required');
    await expectRejected({ model: 'command-x', messages: hi }, 404, "model 'command-x' not found, make sure the correct model ID was used");
    await expectRejected({ model: 'embed-v4.0', messages: hi }, 400, 'does not support the chat endpoint');
  });

  test('roles, system placement and tool call ids', async () => {
    await expectRejected({ ...base, messages: [{ role: 'developer', content: 'x' }] }, 400, "received 'developer'");
    await expectRejected({ ...base, messages: [user('hi'), { role: 'system', content: 'late' }] }, 400, 'system turn must be the first in the list');
    await expectRejected(
      { ...base, messages: [user('hi'), { role: 'tool', tool_call_id: 'missing', content: '21C' }] },
      400,
      'tool call id not found in previous tool calls',
    );
    await expectRejected({ ...base, messages: [user('')] }, 400, 'message must be at least 1 token long');
    const toolCall = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } };
    await expectRejected(
      { ...base, messages: [user('hi'), { role: 'assistant', tool_calls: [toolCall] }] },
      422,
      'invalid type: parameter messages[1].tool_calls[0].function.arguments is of type object but should be of type string',
    );
    const ok = await post({ ...base, messages: [{ role: 'system', content: 'be terse' }, user('hi')] });
    expect(ok.status).toBe(200);
  });

  test('OpenAI-only fields are unknown fields (422)', async () => {
    for (const field of ['max_completion_tokens', 'stop', 'top_p', 'n', 'parallel_tool_calls', 'user']) {
      await expectRejected({ ...base, messages: hi, [field]: 1 }, 422, `unknown field: parameter ${field} is not a valid field`);
    }
    await expectRejected({ ...base, messages: [{ role: 'user', content: 'hi', name: 'bob' }] }, 422, 'parameter messages[0].name is not a valid field');
  });

  test('tool_choice is REQUIRED or NONE; other limits', async () => {
    await expectRejected({ ...base, tools: [weather], tool_choice: 'auto', messages: hi }, 422, "unrecognized tool choice option 'auto'");
    await expectRejected(
      { ...base, tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } }, messages: hi },
      422,
      'unrecognized tool choice option',
    );
    await expectRejected({ ...base, tool_choice: 'REQUIRED', messages: hi }, 400, 'tools are specified');
    await expectRejected({ ...base, stop_sequences: ['1', '2', '3', '4', '5', '6'], messages: hi }, 400, 'stop_sequences cannot have more than 5');
    await expectRejected({ ...base, temperature: -0.5, messages: hi }, 400, 'temperature must be non-negative');
    await expectRejected({ ...base, p: 1, messages: hi }, 400, 'p must be at most 0.99');
    await expectRejected(
      { ...base, response_format: { type: 'json_schema', json_schema: { schema: {} } }, messages: hi },
      422,
      "unrecognized response format type 'json_schema'",
    );
    await expectRejected({ ...base, tools: [{ name: 'f', parameters: {} }], messages: hi }, 422, 'parameter tools[0].name is not a valid field');
  });
});

describe('answers', () => {
  test('plain answer shape and usage (tokens exceed billed units)', async () => {
    const response = await post({ ...base, messages: hi });
    expect(response.json).toEqual({
      id: expect.any(String),
      message: { role: 'assistant', content: [{ type: 'text', text: 'Echo: hi' }] },
      finish_reason: 'COMPLETE',
      usage: {
        billed_units: { input_tokens: countTokens('hi'), output_tokens: countTokens('Echo: hi') },
        tokens: { input_tokens: countTokens('hi') + 64, output_tokens: countTokens('Echo: hi') },
        cached_tokens: 0,
      },
    });
  });

  test('images, max tokens, stop sequences, JSON mode', async () => {
    const image = await post({
      ...base,
      messages: [
        user([
          { type: 'text', text: 'look' },
          { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
        ]),
      ],
    });
    expect(image.json.message.content[0].text).toBe('Echo: look [images: 1]');
    const short = await post({ ...base, max_tokens: 2, messages: [user('a long question')] });
    expect([short.json.message.content[0].text, short.json.finish_reason]).toEqual(['Echo: a ', 'MAX_TOKENS']);
    const stopped = await post({ ...base, stop_sequences: ['END'], messages: [user('one END two')] });
    expect([stopped.json.message.content[0].text, stopped.json.finish_reason]).toEqual(['Echo: one ', 'STOP_SEQUENCE']);
    const json = await post({ ...base, response_format: { type: 'json_object', json_schema: { type: 'object' } }, messages: hi });
    expect(JSON.parse(json.json.message.content[0].text)).toEqual({ echo: 'hi' });
  });

  test('tool calls carry JSON-string arguments; NONE answers in text', async () => {
    const first = await post({ ...base, tools: [weather, clock], messages: hi });
    expect(first.json.finish_reason).toBe('TOOL_CALL');
    expect(first.json.message.tool_plan).toEqual(expect.any(String));
    expect(first.json.message.tool_calls).toEqual([
      { id: expect.stringMatching(/^get_weather_/), type: 'function', function: { name: 'get_weather', arguments: '{"city":"sample","days":1}' } },
    ]);
    const all = await post({ ...base, tools: [weather, clock], tool_choice: 'REQUIRED', messages: [user('call all tools')] });
    expect(all.json.message.tool_calls.map((call: any) => call.function.name)).toEqual(['get_weather', 'get_time']);
    const none = await post({ ...base, tools: [weather], tool_choice: 'NONE', messages: hi });
    expect(none.json.message.content[0].text).toBe('Echo: hi');
  });

  test('tool round trip answers with the results', async () => {
    const first = await post({ ...base, tools: [weather, clock], messages: [user('call all tools')] });
    const calls = first.json.message.tool_calls;
    const results = [
      { role: 'tool', tool_call_id: calls[0].id, content: '21C' },
      { role: 'tool', tool_call_id: calls[1].id, content: [{ type: 'document', document: { data: { hour: 12 } } }] },
    ];
    const second = await post({
      ...base,
      tools: [weather, clock],
      messages: [user('call all tools'), { role: 'assistant', tool_plan: first.json.message.tool_plan, tool_calls: calls }, ...results],
    });
    expect(second.status).toBe(200);
    expect(second.json.message.content[0].text).toBe('Tool results: 21C | {"hour":12}');
  });
});

describe('streaming', () => {
  test('text stream: typed events, content deltas, usage in message-end, no [DONE]', async () => {
    const response = await post({ ...base, stream: true, messages: [user('stream me please')] });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const list = events(response.text);
    for (const item of list) expect(item.data.type).toBe(item.event);
    expect(list.map((item) => item.event).filter((name) => name !== 'content-delta')).toEqual(['message-start', 'content-start', 'content-end', 'message-end']);
    expect(list[0]?.data).toMatchObject({ id: expect.any(String), delta: { message: { role: 'assistant' } } });
    const text = list
      .filter((item) => item.event === 'content-delta')
      .map((item) => item.data.delta.message.content.text)
      .join('');
    expect(text).toBe('Echo: stream me please');
    expect(list.at(-1)?.data.delta.finish_reason).toBe('COMPLETE');
    expect(list.at(-1)?.data.delta.usage.billed_units.output_tokens).toBe(countTokens('Echo: stream me please'));
    expect(response.text).not.toContain('[DONE]');
  });

  test('a reasoning model thinks first, in a thinking block billed as output, unless thinking is disabled; streamed as its own content block', async () => {
    const reasoning = { model: 'command-a-reasoning-08-2025', messages: [user('why?')] };
    const answer = await post({ ...reasoning, thinking: { type: 'enabled', token_budget: 512 } });
    expect(answer.json.message.content).toEqual([
      { type: 'thinking', thinking: 'Thinking about: why?' },
      { type: 'text', text: 'Echo: why?' },
    ]);
    expect(answer.json.usage.billed_units.output_tokens).toBe(countTokens('Thinking about: why?') + countTokens('Echo: why?'));
    const quiet = await post({ ...reasoning, thinking: { type: 'disabled' } });
    expect(quiet.json.message.content).toEqual([{ type: 'text', text: 'Echo: why?' }]);
    expect((await post({ ...base, messages: [user('why?')] })).json.message.content).toEqual([{ type: 'text', text: 'Echo: why?' }]);
    const list = events((await post({ ...reasoning, stream: true })).text);
    expect(list.filter((item) => item.event === 'content-start').map((item) => [item.data.index, item.data.delta.message.content.type])).toEqual([
      [0, 'thinking'],
      [1, 'text'],
    ]);
    const deltas = list.filter((item) => item.event === 'content-delta');
    expect(deltas.map((item) => item.data.delta.message.content.thinking ?? '').join('')).toBe('Thinking about: why?');
    expect(deltas.map((item) => item.data.delta.message.content.text ?? '').join('')).toBe('Echo: why?');
  });

  test('tool stream: plan deltas, one object per tool-call-start, argument deltas', async () => {
    const list = events((await post({ ...base, stream: true, tools: [weather, clock], messages: [user('call all tools')] })).text);
    expect(list.some((item) => item.event === 'tool-plan-delta')).toBe(true);
    const starts = list.filter((item) => item.event === 'tool-call-start');
    expect(starts.map((item) => item.data.index)).toEqual([0, 1]);
    expect(Array.isArray(starts[0]?.data.delta.message.tool_calls)).toBe(false);
    expect(starts[0]?.data.delta.message.tool_calls).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '' } });
    const argumentsOf = (index: number) =>
      list
        .filter((item) => item.event === 'tool-call-delta' && item.data.index === index)
        .map((item) => item.data.delta.message.tool_calls.function.arguments)
        .join('');
    expect(JSON.parse(argumentsOf(0))).toEqual({ city: 'sample', days: 1 });
    expect(JSON.parse(argumentsOf(1))).toEqual({ zone: 'sample' });
    expect(list.filter((item) => item.event === 'tool-call-end')).toHaveLength(2);
    expect(list.at(-1)?.data.delta.finish_reason).toBe('TOOL_CALL');
  });
});

describe('embeddings and models', () => {
  test('embed v2 requires input_type and returns embeddings by type', async () => {
    await expectRejected({ model: 'embed-english-v3.0', texts: ['a'] }, 400, 'valid input_type must be provided', '/v2/embed');
    await expectRejected({ model: 'command-r', texts: ['a'], input_type: 'search_query' }, 400, 'does not support the embed endpoint', '/v2/embed');
    await expectRejected({ model: 'embed-v4.0', input: ['a'], input_type: 'search_query' }, 422, 'unknown field: parameter input', '/v2/embed');
    const response = await post(
      { model: 'embed-english-v3.0', texts: ['hello', 'world'], input_type: 'search_document', embedding_types: ['float', 'int8'] },
      '/v2/embed',
    );
    expect(response.json).toMatchObject({ texts: ['hello', 'world'], meta: { billed_units: { input_tokens: countTokens('hello') + countTokens('world') } } });
    expect(response.json.embeddings.float).toHaveLength(2);
    expect(response.json.embeddings.float[0]).toHaveLength(1_024);
    expect(response.json.embeddings.int8[0]).toHaveLength(1_024);
    const v4 = await post(
      { model: 'embed-v4.0', inputs: [{ content: [{ type: 'text', text: 'hello' }] }], input_type: 'search_query', output_dimension: 256 },
      '/v2/embed',
    );
    expect(v4.json.embeddings.float[0]).toHaveLength(256);
  });

  test('models list pages and filters by endpoint', async () => {
    const get = async (query: string) => (await (await fetch(`${simulator.url}/v1/models${query}`, { headers: goodHeaders })).json()) as any;
    const first = await get('?page_size=2');
    expect(first.models.map((model: any) => model.name)).toEqual(['command-a-03-2025', 'command-r-plus']);
    const rest = await get(`?page_size=10&page_token=${first.next_page_token}`);
    expect(rest.next_page_token).toBeUndefined();
    expect(rest.models).toHaveLength(5);
    const embedOnly = await get('?endpoint=embed');
    expect(embedOnly.models.map((model: any) => model.name)).toEqual(['embed-english-v3.0', 'embed-v4.0']);
    expect(first.models[0]).toMatchObject({ endpoints: ['chat'], context_length: 256_000, finetuned: false });
  });
});

describe('faults', () => {
  const cases: [Fault, number, string][] = [
    [{ kind: 'rate_limit', retryAfterSeconds: 4 }, 429, 'You are past the per minute request limit'],
    [{ kind: 'quota' }, 402, 'billing'],
    [{ kind: 'server_error' }, 500, 'internal server error'],
    [{ kind: 'overloaded' }, 503, 'unavailable'],
    [{ kind: 'auth' }, 401, 'invalid api token'],
    [{ kind: 'model_not_found' }, 404, "model 'command-a-03-2025' not found"],
    [{ kind: 'context_length' }, 400, 'too many tokens'],
  ];
  for (const [fault, status, fragment] of cases) {
    test(`${fault.kind} → ${status}`, async () => {
      simulator.inject(fault);
      const response = await post({ ...base, messages: hi });
      expect(response.status).toBe(status);
      expect(response.json).toEqual({ id: expect.any(String), message: expect.any(String) });
      expect(response.json.message).toContain(fragment);
      if (fault.kind === 'rate_limit') expect(response.headers.get('retry-after')).toBe('4');
      expect((await post({ ...base, messages: hi })).status).toBe(200);
    });
  }

  test('status, delay and reset', async () => {
    simulator.inject({ kind: 'status', status: 498, body: { message: 'blocked' } }, { kind: 'delay', delayMs: 120 }, { kind: 'reset' });
    expect((await post({ ...base, messages: hi })).status).toBe(498);
    const started = Date.now();
    expect((await post({ ...base, messages: hi })).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    await expect(post({ ...base, messages: hi })).rejects.toThrow();
  });

  test('mid-stream error ends with message-end carrying delta.error; reset and slow streams', async () => {
    const body = { ...base, stream: true, messages: [user('a long enough question to stream')] };
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 2 });
    const list = events((await post(body)).text);
    expect(list.filter((item) => item.event === 'content-delta')).toHaveLength(2);
    expect(list.at(-1)?.data).toMatchObject({ type: 'message-end', delta: { finish_reason: 'ERROR', error: expect.any(String) } });
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 1 });
    await expect(post(body)).rejects.toThrow();
    simulator.inject({ kind: 'slow_stream', delayMs: 15 });
    const started = Date.now();
    const slow = events((await post({ ...base, stream: true, messages: hi })).text);
    expect(slow.at(-1)?.event).toBe('message-end');
    expect(Date.now() - started).toBeGreaterThanOrEqual(15 * slow.length);
  });
});
