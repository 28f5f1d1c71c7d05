// Checks the Perplexity simulator itself with plain fetch: auth, Sonar validation, citations and
// priced usage, stream framing and every fault kind.

import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { countTokens, type Fault } from './common.ts';
import { promptTokensFor } from './openai-behaviour.ts';
import { PERPLEXITY_CITATIONS, perplexityCost, startPerplexitySimulator } from './perplexity.ts';
import { ALTERNATION_MESSAGE } from './perplexity-validation.ts';
import { dataChunks, fetchFailure, postJson, readEvents, readUntilFailure, splitEvents } from './openai-test-helpers.ts';

const simulator = startPerplexitySimulator();
const auth = { authorization: 'Bearer perplexity-test-key' };
const chatUrl = `${simulator.url}/chat/completions`;
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const system = (content: string) => ({ role: 'system', content });
const chat = (body: Record<string, unknown> = {}, headers: Record<string, string> = auth) =>
  postJson(chatUrl, { model: 'sonar', messages: [user('what is keyway')], ...body }, headers);

beforeEach(() => simulator.reset());
afterAll(() => simulator.stop());

async function expectError(response: Response, status: number, type: string, message?: string | RegExp) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'type']);
  expect(body.error.code).toBe(status);
  expect(body.error.type).toBe(type);
  if (message instanceof RegExp) expect(String(body.error.message)).toMatch(message);
  else if (message !== undefined) expect(body.error.message).toBe(message);
}

describe('auth and routes', () => {
  test('missing and wrong keys get 401 in Perplexity shape', async () => {
    await expectError(await chat({}, {}), 401, 'unauthorized');
    await expectError(await chat({}, { authorization: 'Bearer pplx-wrong' }), 401, 'unauthorized', 'Invalid API key provided.');
    await expectError(await fetch(`${simulator.url}/v1/models`), 401, 'unauthorized');
  });

  test('chat answers on /chat/completions and /v1/chat/completions', async () => {
    for (const path of ['/chat/completions', '/v1/chat/completions']) {
      const response = await postJson(`${simulator.url}${path}`, { model: 'sonar', messages: [user('hi')] }, auth);
      expect(response.status).toBe(200);
    }
    expect(simulator.inferenceRequests().map((request) => request.path)).toEqual(['/chat/completions', '/v1/chat/completions']);
  });

  test('models are listed', async () => {
    const body = (await (await fetch(`${simulator.url}/v1/models`, { headers: auth })).json()) as Record<string, any>;
    expect(body.object).toBe('list');
    expect(body.data.map((model: any) => model.id)).toEqual(['sonar', 'sonar-pro', 'sonar-reasoning-pro', 'sonar-deep-research']);
    expect(body.data[0]).toEqual({ id: 'sonar', object: 'model', created: 0, owned_by: 'perplexity' });
  });

  test('unknown routes are 404', async () => {
    await expectError(await postJson(`${simulator.url}/v1/embeddings`, {}, auth), 404, 'not_found');
  });
});

describe('validation', () => {
  const toolCall = { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } };
  const cases: Array<[string, unknown, string, string | RegExp | undefined]> = [
    ['unparsable JSON', '{"model"', 'invalid_request', undefined],
    [
      'unknown model',
      { model: 'gpt-4o', messages: [user('x')] },
      'invalid_model',
      "Invalid model 'gpt-4o'. Permitted models can be found in the documentation at https://docs.perplexity.ai/getting-started/models.",
    ],
    [
      'gateway field provider',
      { model: 'sonar', messages: [user('x')], provider: 'perplexity' },
      'invalid_parameter',
      'Unrecognized request argument supplied: provider',
    ],
    ['gateway field routing', { model: 'sonar', messages: [user('x')], routing: {} }, 'invalid_parameter', 'Unrecognized request argument supplied: routing'],
    ['empty messages', { model: 'sonar', messages: [] }, 'invalid_message', undefined],
    ['developer role', { model: 'sonar', messages: [{ role: 'developer', content: 'x' }, user('x')] }, 'invalid_message', /Invalid role "developer"/],
    ['two user turns in a row', { model: 'sonar', messages: [user('a'), user('b')] }, 'invalid_message', ALTERNATION_MESSAGE],
    ['assistant first', { model: 'sonar', messages: [system('s'), assistant('a'), user('b')] }, 'invalid_message', ALTERNATION_MESSAGE],
    ['system in the middle', { model: 'sonar', messages: [user('a'), assistant('b'), system('c'), user('d')] }, 'invalid_message', ALTERNATION_MESSAGE],
    [
      'tool message without tool calls',
      { model: 'sonar', messages: [user('a'), { role: 'tool', tool_call_id: 'call_1', content: 'x' }] },
      'invalid_message',
      ALTERNATION_MESSAGE,
    ],
    [
      'tool message with an unknown id',
      {
        model: 'sonar',
        messages: [user('a'), { role: 'assistant', content: null, tool_calls: [toolCall] }, { role: 'tool', tool_call_id: 'call_9', content: 'x' }],
      },
      'invalid_message',
      /tool_call_id/,
    ],
    [
      'ending on an assistant turn',
      { model: 'sonar', messages: [user('a'), assistant('b')] },
      'invalid_message',
      'Last message must have role `user` or `tool`.',
    ],
    ['max_tokens above 128000', { model: 'sonar', messages: [user('x')], max_tokens: 128_001 }, 'invalid_parameter', /max_tokens/],
    ['temperature above 2', { model: 'sonar', messages: [user('x')], temperature: 2.1 }, 'invalid_parameter', /temperature/],
    ['temperature below 0', { model: 'sonar', messages: [user('x')], temperature: -0.1 }, 'invalid_parameter', /temperature/],
    ['top_p above 1', { model: 'sonar', messages: [user('x')], top_p: 1.2 }, 'invalid_parameter', /top_p/],
    [
      'json_object response format',
      { model: 'sonar', messages: [user('json')], response_format: { type: 'json_object' } },
      'invalid_parameter',
      /response_format\.type/,
    ],
    [
      'json_schema without schema',
      { model: 'sonar', messages: [user('x')], response_format: { type: 'json_schema', json_schema: {} } },
      'invalid_parameter',
      /schema/,
    ],
    [
      'unknown search context size',
      { model: 'sonar', messages: [user('x')], web_search_options: { search_context_size: 'huge' } },
      'invalid_parameter',
      /search_context_size/,
    ],
    ['unknown recency filter', { model: 'sonar', messages: [user('x')], search_recency_filter: 'decade' }, 'invalid_parameter', /search_recency_filter/],
    [
      'forced tool_choice object',
      { model: 'sonar', messages: [user('x')], tool_choice: { type: 'function', function: { name: 'f' } } },
      'invalid_parameter',
      /tool_choice/,
    ],
  ];
  for (const [name, body, type, message] of cases) {
    test(`rejects ${name}`, async () => {
      await expectError(await postJson(chatUrl, body, auth), 400, type, message);
    });
  }

  test('accepts leading systems, alternation and tool runs after tool calls', async () => {
    const toolCalls = [toolCall, { ...toolCall, id: 'call_2' }];
    const messages = [
      system('a'),
      system('b'),
      user('q'),
      { role: 'assistant', content: null, tool_calls: toolCalls },
      { role: 'tool', tool_call_id: 'call_1', content: 'one' },
      { role: 'tool', tool_call_id: 'call_2', content: 'two' },
    ];
    const body = (await (await chat({ messages, max_tokens: 128_000, temperature: 2 })).json()) as Record<string, any>;
    expect(body.choices[0].message.content).toBe('Tool results: one | two');
    const followUp = [...messages, assistant('done'), user('thanks')];
    expect((await chat({ messages: followUp })).status).toBe(200);
  });
});

describe('answers', () => {
  test('echo with citations, search results and a priced usage block', async () => {
    const messages = [system('Be precise.'), user('what is keyway')];
    const response = await chat({ messages });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, any>;
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('sonar');
    expect(body.choices).toEqual([{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Echo: what is keyway' } }]);
    expect(body.citations).toEqual([...PERPLEXITY_CITATIONS]);
    expect(body.search_results).toHaveLength(2);
    expect(Object.keys(body.search_results[0]).sort()).toEqual(['date', 'last_updated', 'snippet', 'source', 'title', 'url']);
    expect(body.search_results.map((result: any) => result.url)).toEqual([...PERPLEXITY_CITATIONS]);
    const promptTokens = promptTokensFor(messages);
    const completionTokens = countTokens('Echo: what is keyway');
    const usage = body.usage;
    expect(usage.prompt_tokens).toBe(promptTokens);
    expect(usage.completion_tokens).toBe(completionTokens);
    expect(usage.total_tokens).toBe(promptTokens + completionTokens);
    expect(usage.citation_tokens).toBeGreaterThan(0);
    expect(usage.num_search_queries).toBe(1);
    expect(usage.reasoning_tokens).toBe(0);
    expect(usage.search_context_size).toBe('low');
    expect(usage.cost.input_tokens_cost).toBeCloseTo(promptTokens / 1e6, 9);
    expect(usage.cost.output_tokens_cost).toBeCloseTo(completionTokens / 1e6, 9);
    expect(usage.cost.request_cost).toBe(0.005);
    expect(usage.cost.total_cost).toBeCloseTo(0.005 + (promptTokens + completionTokens) / 1e6, 9);
  });

  test('search context size and model change the price', async () => {
    const body = (await (await chat({ model: 'sonar-pro', web_search_options: { search_context_size: 'high' } })).json()) as Record<string, any>;
    expect(body.usage.search_context_size).toBe('high');
    expect(body.usage.cost.request_cost).toBe(0.014);
    expect(body.usage.cost.output_tokens_cost).toBeCloseTo((body.usage.completion_tokens * 15) / 1e6, 9);
    const medium = (await (await chat({ web_search_options: { search_context_size: 'medium' } })).json()) as Record<string, any>;
    expect(medium.usage.cost.request_cost).toBe(0.008);
  });

  test('perplexityCost bills deep research per citation, reasoning token and search', () => {
    const counts = {
      prompt_tokens: 1000,
      completion_tokens: 1000,
      citation_tokens: 1000,
      reasoning_tokens: 1000,
      num_search_queries: 2,
      search_context_size: 'low' as const,
    };
    expect(perplexityCost('sonar-deep-research', counts)).toEqual({
      input_tokens_cost: 0.002,
      output_tokens_cost: 0.008,
      request_cost: 0,
      citation_tokens_cost: 0.002,
      reasoning_tokens_cost: 0.003,
      search_queries_cost: 0.01,
      total_cost: 0.025,
    });
  });

  test('max_tokens truncates with finish_reason length; stop cuts', async () => {
    const truncated = (await (await chat({ max_tokens: 2 })).json()) as Record<string, any>;
    expect(truncated.choices[0]).toMatchObject({ finish_reason: 'length', message: { content: 'Echo: wh' } });
    const stopped = (await (await chat({ stop: ['keyway'] })).json()) as Record<string, any>;
    expect(stopped.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'Echo: what is ' } });
  });

  test('tools never produce tool calls; json_schema answers with a JSON echo', async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
    const withTools = (await (await chat({ tools })).json()) as Record<string, any>;
    expect(withTools.choices[0].finish_reason).toBe('stop');
    const format = { type: 'json_schema', json_schema: { schema: { type: 'object' } } };
    const json = (await (await chat({ response_format: format })).json()) as Record<string, any>;
    expect(JSON.parse(json.choices[0].message.content)).toEqual({ echo: 'what is keyway' });
  });
});

describe('streaming', () => {
  for (const includeUsage of [undefined, true, false]) {
    test(`usage on the final chunk only, include_usage ${String(includeUsage)}`, async () => {
      const streamOptions = includeUsage === undefined ? {} : { stream_options: { include_usage: includeUsage } };
      const response = await chat({ stream: true, ...streamOptions });
      expect(response.headers.get('content-type')).toStartWith('text/event-stream');
      const events = await readEvents(response);
      expect(events.at(-1)).toBe('data: [DONE]');
      const chunks = dataChunks(events);
      expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
      expect(chunks.every((chunk) => chunk.citations.length === 2 && chunk.search_results.length === 2)).toBe(true);
      expect(chunks.every((chunk) => chunk.choices[0].delta.role === 'assistant')).toBe(true);
      expect(chunks.map((chunk) => chunk.choices[0].delta.content).join('')).toBe('Echo: what is keyway');
      const last = chunks.at(-1)!;
      expect(last.choices[0].finish_reason).toBe('stop');
      expect(last.usage.total_tokens).toBe(last.usage.prompt_tokens + last.usage.completion_tokens);
      expect(last.usage.cost.total_cost).toBeGreaterThan(0);
      expect(chunks.slice(0, -1).some((chunk) => 'usage' in chunk)).toBe(false);
      expect(chunks.slice(0, -1).every((chunk) => chunk.choices[0].finish_reason === null)).toBe(true);
    });
  }

  test('a truncated stream ends with finish_reason length', async () => {
    const chunks = dataChunks(await readEvents(await chat({ stream: true, max_tokens: 1 })));
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('length');
  });
});

describe('faults', () => {
  async function errorOf(response: Response): Promise<Record<string, unknown>> {
    return ((await response.json()) as { error: Record<string, unknown> }).error;
  }

  test('rate_limit: 429 with retry-after and no quota headers', async () => {
    simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 3 });
    const response = await chat();
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBeNull();
    expect(await errorOf(response)).toMatchObject({ type: 'request_rate_limit_exceeded', code: 429 });
  });

  const statusFaults: Array<[Fault, number, string]> = [
    [{ kind: 'quota' }, 429, 'insufficient_quota'],
    [{ kind: 'server_error' }, 500, 'internal_error'],
    [{ kind: 'overloaded' }, 503, 'service_unavailable'],
    [{ kind: 'auth' }, 401, 'unauthorized'],
    [{ kind: 'model_not_found' }, 400, 'invalid_model'],
    [{ kind: 'context_length' }, 400, 'context_length_exceeded'],
  ];
  for (const [fault, status, type] of statusFaults) {
    test(`${fault.kind}: ${status} ${type}`, async () => {
      simulator.inject(fault);
      await expectError(await chat(), status, type);
    });
  }

  test('status: any status and body', async () => {
    simulator.inject({ kind: 'status', status: 502, body: { detail: 'bad gateway' } });
    const response = await chat();
    expect(response.status).toBe(502);
    expect(await response.json()).toEqual({ detail: 'bad gateway' });
  });

  test('delay: waits, then answers', async () => {
    simulator.inject({ kind: 'delay', delayMs: 120 });
    const started = performance.now();
    expect((await chat()).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  test('reset: the fetch fails with a connection error', async () => {
    simulator.inject({ kind: 'reset' });
    expect(((await fetchFailure(chat())) as { code?: string }).code).toBe('ECONNRESET');
  });

  test('mid_stream_error: N chunks then an `event: error` frame, no [DONE]', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const events = await readEvents(await chat({ stream: true }));
    expect(events).toHaveLength(2);
    expect(dataChunks(events.slice(0, 1))[0]!.choices[0].delta.content).toBe('Echo: wh');
    expect(events[1]!.startsWith('event: error\ndata: ')).toBe(true);
    expect(JSON.parse(events[1]!.split('data: ')[1]!)).toMatchObject({ error: { type: 'internal_error', code: 500 } });
  });

  test('mid_stream_reset: N chunks then the body read fails', async () => {
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 2 });
    const { text, failure } = await readUntilFailure(await chat({ stream: true }));
    expect(failure).toBeDefined();
    expect(splitEvents(text)).toHaveLength(2);
    expect(text).not.toContain('usage');
  });

  test('slow_stream: delays every chunk', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 15 });
    const started = performance.now();
    const events = await readEvents(await chat({ stream: true }));
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(performance.now() - started).toBeGreaterThanOrEqual(15 * (events.length - 1));
  });

  test('stream faults on a non-stream request answer normally', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 0 });
    expect((await chat()).status).toBe(200);
    expect(simulator.state.queue).toHaveLength(0);
  });
});
