import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { startAnthropicSimulator } from './anthropic.ts';
import { countTokens } from './common.ts';

const simulator = startAnthropicSimulator();
const goodHeaders = { 'content-type': 'application/json', 'x-api-key': 'anthropic-test-key', 'anthropic-version': '2023-06-01' };
const base = { model: 'claude-sonnet-4-5', max_tokens: 256 };
const weatherTool = {
  name: 'get_weather',
  description: 'Weather',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] },
};
const timeTool = { name: 'get_time', input_schema: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'] } };
const pngBase64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

afterAll(() => simulator.stop());
beforeEach(() => simulator.reset());

async function post(body: unknown, headers: Record<string, string> = goodHeaders, path = '/v1/messages') {
  const response = await fetch(`${simulator.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
}

async function expectRejected(body: unknown, fragment: string, status = 400, type = 'invalid_request_error') {
  const response = await post(body);
  expect(response.status).toBe(status);
  expect(response.json.type).toBe('error');
  expect(response.json.error.type).toBe(type);
  expect(response.json.error.message).toContain(fragment);
  expect(response.json.request_id).toBe(response.headers.get('request-id'));
}

function events(text: string): { event: string; data: any }[] {
  return text
    .split('\n\n')
    .filter((chunk) => chunk.trim().length > 0)
    .map((chunk) => {
      const event = /^event: (.*)$/m.exec(chunk)?.[1] ?? '';
      const data = /^data: (.*)$/m.exec(chunk)?.[1] ?? 'null';
      return { event, data: JSON.parse(data) };
    });
}

const user = (content: unknown) => ({ role: 'user', content });
const hi = [user('hi')];

describe('authentication and headers', () => {
  test('requires x-api-key and rejects bearer-only requests', async () => {
    const { 'x-api-key': _key, ...noKey } = goodHeaders;
    expect((await post({ ...base, messages: hi }, noKey)).json.error.message).toBe('x-api-key header is required');
    const bearer = await post({ ...base, messages: hi }, { ...noKey, authorization: 'Bearer anthropic-test-key' });
    expect(bearer.status).toBe(401);
    expect(bearer.json.error).toEqual({ type: 'authentication_error', message: 'OAuth authentication is currently not supported.' });
    const wrong = await post({ ...base, messages: hi }, { ...goodHeaders, 'x-api-key': 'nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.message).toBe('invalid x-api-key');
  });

  test('requires anthropic-version', async () => {
    const { 'anthropic-version': _version, ...noVersion } = goodHeaders;
    const response = await post({ ...base, messages: hi }, noVersion);
    expect(response.status).toBe(400);
    expect(response.json.error.message).toBe('anthropic-version: header is required');
  });

  test('every response carries request-id and RFC 3339 rate-limit headers', async () => {
    for (const response of [await post({ ...base, messages: hi }), await post({ messages: hi })]) {
      expect(response.headers.get('request-id')).toMatch(/^req_/);
      for (const name of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
        expect(Number(response.headers.get(`anthropic-ratelimit-${name}-limit`))).toBeGreaterThan(0);
        expect(response.headers.get(`anthropic-ratelimit-${name}-remaining`)).not.toBeNull();
        expect(response.headers.get(`anthropic-ratelimit-${name}-reset`)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      }
    }
  });
});

describe('request validation', () => {
  test('required fields and ranges', async () => {
    await expectRejected({ model: base.model, messages: hi }, 'max_tokens: Field required');
    await expectRejected({ max_tokens: 5, messages: hi }, 'model: Field required');
    await expectRejected({ ...base }, 'messages: Field required');
    await expectRejected({ ...base, max_tokens: 0, messages: hi }, 'max_tokens: Input should be greater than or equal to 1');
    await expectRejected({ ...base, max_tokens: 1.5, messages: hi }, 'max_tokens: Input should be a valid integer');
    await expectRejected({ ...base, max_tokens: 100_000, messages: hi }, 'maximum allowed number of output tokens');
    await expectRejected({ ...base, temperature: 1.5, messages: hi }, 'temperature: Input should be less than or equal to 1');
    await expectRejected({ ...base, messages: [] }, 'at least one message');
    await expectRejected({ ...base, stop_sequences: [' '], messages: hi }, 'non-whitespace');
  });

  test('rejects OpenAI-only fields, roles and blocks', async () => {
    await expectRejected({ ...base, n: 2, messages: hi }, 'n: Extra inputs are not permitted');
    await expectRejected({ ...base, messages: [{ role: 'system', content: 'be terse' }, user('hi')] }, 'Unexpected role "system"');
    await expectRejected({ ...base, messages: [user('hi'), { role: 'tool', content: 'x' }] }, "messages.1.role: Input should be 'user' or 'assistant'");
    await expectRejected({ ...base, messages: [{ role: 'user', content: 'hi', name: 'bob' }] }, 'messages.0.name: Extra inputs are not permitted');
    await expectRejected({ ...base, messages: [user([{ type: 'image_url', image_url: { url: 'https://x/y.png' } }])] }, "Input tag 'image_url'");
    await expectRejected({ ...base, messages: [user('')] }, 'non-empty content');
    await expectRejected({ ...base, messages: [user([{ type: 'text', text: '' }])] }, 'text content blocks must be non-empty');
    await expectRejected({ ...base, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }], messages: hi }, "Input tag 'function'");
    await expectRejected({ ...base, tools: [{ name: 'f', input_schema: { type: 'array' } }], messages: hi }, "input_schema.type: Input should be 'object'");
  });

  test('unknown model is 404 not_found_error; aliases and assistant-first conversations work', async () => {
    await expectRejected({ ...base, model: 'claude-9', messages: hi }, 'model: claude-9', 404, 'not_found_error');
    const response = await post({ ...base, messages: [{ role: 'assistant', content: 'Hello!' }, user('hi'), user('again')] });
    expect(response.status).toBe(200);
    expect(response.json.model).toBe('claude-sonnet-4-5-20250929');
    expect(response.json.content[0].text).toBe('Echo: hi\nagain');
  });

  test('images: media types, base64 content, url sources', async () => {
    const image = (source: unknown) => [
      user([
        { type: 'text', text: 'look' },
        { type: 'image', source },
      ]),
    ];
    await expectRejected({ ...base, messages: image({ type: 'base64', media_type: 'image/bmp', data: pngBase64 }) }, 'media_type');
    await expectRejected({ ...base, messages: image({ type: 'base64', media_type: 'image/png', data: `data:image/png;base64,${pngBase64}` }) }, 'valid base64');
    await expectRejected({ ...base, messages: image({ type: 'base64', media_type: 'image/jpeg', data: pngBase64 }) }, 'appears to be a image/png image');
    const ok = await post({ ...base, messages: image({ type: 'url', url: 'https://example.com/cat.png' }) });
    expect(ok.json.content[0].text).toBe('Echo: look [images: 1]');
  });

  test('tool_use input must be an object and tool results must answer the previous turn', async () => {
    const call = { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } };
    const result = { type: 'tool_result', tool_use_id: 'toolu_1', content: '21C' };
    const loop = (assistant: unknown[], reply: unknown[]) => ({
      ...base,
      tools: [weatherTool],
      messages: [user('weather?'), { role: 'assistant', content: assistant }, user(reply)],
    });
    await expectRejected(loop([{ ...call, input: '{"city":"Paris"}' }], [result]), 'tool_use.input: Input should be a valid dictionary');
    await expectRejected(loop([call], [{ ...result, tool_use_id: 'toolu_2' }]), 'unexpected `tool_use_id` found in `tool_result` blocks: toolu_2');
    await expectRejected(
      loop([call], [{ type: 'text', text: 'no result' }]),
      '`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1',
    );
    await expectRejected(loop([call], [{ type: 'text', text: 'first' }, result]), 'Did not find 1 `tool_result` block(s) at the beginning');
    await expectRejected(loop([{ ...call, id: 'call.1' }], [{ ...result, tool_use_id: 'call.1' }]), 'tool_use.id: String should match pattern');
    await expectRejected({ ...base, messages: [user([result])] }, 'unexpected `tool_use_id`');
  });

  test('search results: in a user turn or a tool result, with source, title and text blocks, citations all or none', async () => {
    const result = {
      type: 'search_result',
      source: 'https://docs.example.com/paris',
      title: 'Paris weather',
      content: [{ type: 'text', text: 'Sunny, 21C.' }],
      citations: { enabled: true },
      cache_control: { type: 'ephemeral' },
    };
    const call = { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } };
    const loop = (content: unknown[]) => ({
      ...base,
      tools: [weatherTool],
      messages: [user('weather?'), { role: 'assistant', content: [call] }, user([{ type: 'tool_result', tool_use_id: 'toolu_1', content }])],
    });
    const answered = await post(loop([result]));
    expect(answered.status).toBe(200);
    expect(answered.json.content[0].text).toBe('Tool results: Paris weather https://docs.example.com/paris Sunny, 21C.');
    expect((await post({ ...base, messages: [user([result, { type: 'text', text: 'Summarise' }])] })).status).toBe(200);
    const { source: _source, ...withoutSource } = result;
    await expectRejected(loop([withoutSource]), 'tool_result.content.0.search_result.source: Field required');
    await expectRejected({ ...base, messages: [user([{ ...result, title: 7 }])] }, 'content.0.search_result.title: Input should be a valid string');
    await expectRejected({ ...base, messages: [user([{ ...result, content: 'Sunny' }])] }, 'search_result.content: Input should be a valid list');
    await expectRejected({ ...base, messages: [user([{ ...result, content: [] }])] }, 'search_result.content: List should have at least 1 item');
    await expectRejected(
      { ...base, messages: [user([{ ...result, content: [{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }] }])] },
      "search_result.content.0: Input tag 'image' found using 'type' does not match any of the expected tags: 'text'",
    );
    await expectRejected({ ...base, messages: [user([{ ...result, citations: true }])] }, 'search_result.citations: Input should be a valid dictionary');
    await expectRejected({ ...base, messages: [user([{ ...result, url: 'https://x' }])] }, 'search_result.url: Extra inputs are not permitted');
    await expectRejected(
      { ...base, messages: [user([result, { ...result, citations: { enabled: false } }])] },
      'Citations must be either enabled or disabled for all search results',
    );
  });

  test('tool_choice shapes', async () => {
    await expectRejected({ ...base, tools: [weatherTool], tool_choice: { type: 'required' }, messages: hi }, "Input tag 'required'");
    await expectRejected({ ...base, tools: [weatherTool], tool_choice: { type: 'tool', name: 'nope' }, messages: hi }, "Tool 'nope' not found");
    await expectRejected({ ...base, tool_choice: { type: 'auto' }, messages: hi }, 'tool_choice may only be specified while providing tools');
    await expectRejected(
      { ...base, tools: [weatherTool], tool_choice: { type: 'none', disable_parallel_tool_use: true }, messages: hi },
      'Extra inputs are not permitted',
    );
  });
});

describe('answers', () => {
  test('plain answer has the exact Messages shape and usage', async () => {
    const response = await post({ ...base, messages: hi });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      content: [{ type: 'text', text: 'Echo: hi' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: countTokens('hi'),
        output_tokens: countTokens('Echo: hi'),
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
        service_tier: 'standard',
      },
    });
  });

  test('max_tokens truncates and stop sequences cut', async () => {
    const short = await post({ ...base, max_tokens: 2, messages: [user('a long question')] });
    expect(short.json.content[0].text).toBe('Echo: a ');
    expect(short.json.stop_reason).toBe('max_tokens');
    const stopped = await post({ ...base, stop_sequences: ['STOP'], messages: [user('one STOP two')] });
    expect(stopped.json.content[0].text).toBe('Echo: one ');
    expect(stopped.json.stop_reason).toBe('stop_sequence');
    expect(stopped.json.stop_sequence).toBe('STOP');
  });

  test('JSON mode through output_config', async () => {
    const response = await post({ ...base, output_config: { format: { type: 'json_schema', schema: { type: 'object' } } }, messages: hi });
    expect(JSON.parse(response.json.content[0].text)).toEqual({ echo: 'hi' });
  });

  test('tool calls: first tool, forced tool, all tools, parallel disabled, none', async () => {
    const first = await post({ ...base, tools: [weatherTool, timeTool], messages: hi });
    expect(first.json.stop_reason).toBe('tool_use');
    expect(first.json.content).toEqual([{ type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'get_weather', input: { city: 'sample', days: 1 } }]);
    const forced = await post({ ...base, tools: [weatherTool, timeTool], tool_choice: { type: 'tool', name: 'get_time' }, messages: hi });
    expect(forced.json.content[0].input).toEqual({ zone: 'UTC' });
    const all = await post({ ...base, tools: [weatherTool, timeTool], tool_choice: { type: 'any' }, messages: [user('please call all tools')] });
    expect(all.json.content.map((block: any) => block.name)).toEqual(['get_weather', 'get_time']);
    const single = await post({
      ...base,
      tools: [weatherTool, timeTool],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      messages: [user('call all tools')],
    });
    expect(single.json.content).toHaveLength(1);
    const none = await post({ ...base, tools: [weatherTool], tool_choice: { type: 'none' }, messages: hi });
    expect(none.json.content[0].text).toBe('Echo: hi');
  });

  test('tool round trip answers with the results', async () => {
    const first = await post({ ...base, tools: [weatherTool, timeTool], messages: [user('call all tools')] });
    const calls = first.json.content;
    const results = calls.map((call: any, index: number) => ({
      type: 'tool_result',
      tool_use_id: call.id,
      content: index === 0 ? '21C' : [{ type: 'text', text: '12:00' }],
    }));
    const second = await post({
      ...base,
      tools: [weatherTool, timeTool],
      messages: [user('call all tools'), { role: 'assistant', content: calls }, user(results)],
    });
    expect(second.status).toBe(200);
    expect(second.json.content[0].text).toBe('Tool results: 21C | 12:00');
    expect(second.json.stop_reason).toBe('end_turn');
  });

  test('a web search server tool runs once before the text answer, streamed or not, and is counted in usage', async () => {
    const body = { ...base, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }], messages: [user('news about Paris')] };
    const answer = await post(body);
    expect(answer.json.content.map((block: { type: string }) => block.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'text']);
    expect(answer.json.content[1].tool_use_id).toBe(answer.json.content[0].id);
    expect(answer.json.usage.server_tool_use).toEqual({ web_search_requests: 1, web_fetch_requests: 0 });
    const streamed = events((await post({ ...body, stream: true })).text);
    const starts = streamed.filter((event) => event.event === 'content_block_start').map((event) => event.data.content_block.type);
    expect(starts).toEqual(['server_tool_use', 'web_search_tool_result', 'text']);
    expect(streamed.find((event) => event.event === 'message_delta')?.data.usage.server_tool_use).toEqual({ web_search_requests: 1, web_fetch_requests: 0 });
  });

  test('citations enabled: the text block cites each search result and plain-text document, and a stream sends each as a citations_delta', async () => {
    const result = (title: string, texts: string[], citations = { enabled: true }) => ({
      type: 'search_result',
      source: `kb://${title}`,
      title,
      content: texts.map((text) => ({ type: 'text', text })),
      citations,
    });
    const handbook = {
      type: 'document',
      source: { type: 'text', media_type: 'text/plain', data: 'Ten days of leave.' },
      title: 'Handbook',
      citations: { enabled: true },
    };
    const call = { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris', days: 1 } };
    const body = {
      ...base,
      tools: [weatherTool],
      messages: [
        user([result('intro', ['Hello.']), handbook, { type: 'text', text: 'weather?' }]),
        { role: 'assistant', content: [call] },
        user([{ type: 'tool_result', tool_use_id: 'toolu_1', content: [result('paris', ['Sunny.', 'Warm.'])] }]),
      ],
    };
    const expected = [
      {
        type: 'search_result_location',
        cited_text: 'Hello.',
        search_result_index: 0,
        source: 'kb://intro',
        title: 'intro',
        start_block_index: 0,
        end_block_index: 1,
      },
      {
        type: 'search_result_location',
        cited_text: 'Sunny.',
        search_result_index: 1,
        source: 'kb://paris',
        title: 'paris',
        start_block_index: 0,
        end_block_index: 1,
      },
      {
        type: 'char_location',
        cited_text: 'Ten days of leave.',
        document_index: 0,
        document_title: 'Handbook',
        start_char_index: 0,
        end_char_index: 18,
        file_id: null,
      },
    ];
    const answer = await post(body);
    expect(answer.json.content).toHaveLength(1);
    expect(answer.json.content[0].citations).toEqual(expected);
    const streamed = events((await post({ ...body, stream: true })).text);
    expect(streamed.find((event) => event.event === 'content_block_start')?.data.content_block).toEqual({ type: 'text', text: '' });
    const deltas = streamed.filter((event) => event.event === 'content_block_delta').map((event) => event.data.delta);
    expect(deltas.filter((delta) => delta.type === 'citations_delta')).toEqual(expected.map((citation) => ({ type: 'citations_delta', citation })));
    expect(deltas.findIndex((delta) => delta.type === 'citations_delta')).toBeGreaterThan(deltas.findLastIndex((delta) => delta.type === 'text_delta'));
    // Without citations enabled, the answer is text alone.
    const plain = await post({ ...base, messages: [user([result('intro', ['Hello.'], { enabled: false }), { type: 'text', text: 'hi' }])] });
    expect(plain.json.content).toEqual([{ type: 'text', text: 'Echo: hi' }]);
  });

  test('count_tokens answers input_tokens and rejects max_tokens', async () => {
    const counted = await post({ model: base.model, system: 'be terse', messages: hi }, goodHeaders, '/v1/messages/count_tokens');
    expect(counted.json).toEqual({ input_tokens: countTokens('be terse\nhi') });
    const rejected = await post({ ...base, messages: hi }, goodHeaders, '/v1/messages/count_tokens');
    expect(rejected.json.error.message).toBe('max_tokens: Extra inputs are not permitted');
  });

  test('prompt caching: creation first, reads after, forgotten on reset', async () => {
    const system = [{ type: 'text', text: 'A long and stable system prompt.', cache_control: { type: 'ephemeral' } }];
    const body = { ...base, system, messages: [user('question one')] };
    const prefixTokens = countTokens('A long and stable system prompt.');
    const total = countTokens('A long and stable system prompt.\nquestion one');
    const first = (await post(body)).json.usage;
    expect(first).toMatchObject({ cache_creation_input_tokens: prefixTokens, cache_read_input_tokens: 0, input_tokens: total - prefixTokens });
    expect(first.cache_creation.ephemeral_5m_input_tokens).toBe(prefixTokens);
    const second = (await post({ ...body, messages: [user('question two!')] })).json.usage;
    expect(second).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: prefixTokens });
    simulator.reset();
    expect((await post(body)).json.usage.cache_creation_input_tokens).toBe(prefixTokens);
  });

  test('thinking: signed block first, replay rules enforced', async () => {
    const thinking = { type: 'enabled', budget_tokens: 1024 };
    const first = await post({ ...base, max_tokens: 2048, thinking, tools: [weatherTool], messages: [user('weather?')] });
    const [thought, call] = first.json.content;
    expect(thought).toEqual({ type: 'thinking', thinking: 'Thinking about: weather?', signature: expect.stringMatching(/^sig_/) });
    expect(call.type).toBe('tool_use');
    const result = { type: 'tool_result', tool_use_id: call.id, content: '21C' };
    const replay = (assistant: unknown[]) =>
      post({
        ...base,
        max_tokens: 2048,
        thinking,
        tools: [weatherTool],
        messages: [user('weather?'), { role: 'assistant', content: assistant }, user([result])],
      });
    const missing = await replay([call]);
    expect(missing.status).toBe(400);
    expect(missing.json.error.message).toContain('Expected `thinking` or `redacted_thinking`, but found `tool_use`');
    expect((await replay([{ ...thought, thinking: 'edited' }, call])).json.error.message).toContain('Invalid `signature` in `thinking` block');
    const good = await replay([thought, call]);
    expect(good.status).toBe(200);
    expect(good.json.content[1].text).toBe('Tool results: 21C');
    await expectRejected({ ...base, max_tokens: 2048, thinking, temperature: 0.2, messages: hi }, '`temperature` may only be set to 1');
    await expectRejected({ ...base, max_tokens: 1024, thinking, messages: hi }, '`max_tokens` must be greater than `thinking.budget_tokens`');
    await expectRejected({ ...base, model: 'claude-3-opus-20240229', max_tokens: 2048, thinking, messages: hi }, 'does not support thinking');
  });
});

describe('streaming', () => {
  test('text stream follows the documented event order', async () => {
    const response = await post({ ...base, stream: true, messages: [user('stream me please')] });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const list = events(response.text);
    expect(list.map((item) => item.event).filter((name) => name !== 'content_block_delta')).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    for (const item of list) expect(item.data.type).toBe(item.event);
    expect(list[0]?.data.message).toMatchObject({ content: [], stop_reason: null, usage: { input_tokens: countTokens('stream me please'), output_tokens: 1 } });
    const text = list
      .filter((item) => item.event === 'content_block_delta')
      .map((item) => item.data.delta.text)
      .join('');
    expect(text).toBe('Echo: stream me please');
    const delta = list.find((item) => item.event === 'message_delta')?.data;
    expect(delta.delta).toEqual({ stop_reason: 'end_turn', stop_sequence: null });
    expect(delta.usage.output_tokens).toBe(countTokens('Echo: stream me please'));
    expect(response.text).not.toContain('[DONE]');
  });

  test('tool and thinking blocks stream as partial JSON and signature deltas', async () => {
    const response = await post({
      ...base,
      max_tokens: 2048,
      stream: true,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [weatherTool],
      messages: hi,
    });
    const list = events(response.text);
    const starts = list.filter((item) => item.event === 'content_block_start').map((item) => item.data);
    expect(starts[0]).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } });
    expect(starts[1].content_block).toMatchObject({ type: 'tool_use', name: 'get_weather', input: {} });
    const deltas = (index: number) => list.filter((item) => item.event === 'content_block_delta' && item.data.index === index).map((item) => item.data.delta);
    expect(deltas(0).at(-1)).toEqual({ type: 'signature_delta', signature: expect.stringMatching(/^sig_/) });
    expect(deltas(0)[0].type).toBe('thinking_delta');
    const pieces = deltas(1).map((delta) => delta.partial_json);
    expect(pieces[0]).toBe('');
    expect(JSON.parse(pieces.join(''))).toEqual({ city: 'sample', days: 1 });
    expect(list.find((item) => item.event === 'message_delta')?.data.delta.stop_reason).toBe('tool_use');
  });
});

describe('models', () => {
  const get = async (query = '') => {
    const response = await fetch(`${simulator.url}/v1/models${query}`, { headers: goodHeaders });
    return { status: response.status, json: (await response.json()) as any };
  };

  test('pages with limit, after_id and before_id', async () => {
    const first = await get('?limit=2');
    expect(first.json.data).toHaveLength(2);
    expect(first.json.data[0]).toMatchObject({
      type: 'model',
      id: 'claude-opus-4-5-20251101',
      display_name: 'Claude Opus 4.5',
      created_at: expect.any(String),
    });
    expect(first.json).toMatchObject({ has_more: true, first_id: 'claude-opus-4-5-20251101', last_id: first.json.data[1].id });
    const next = await get(`?limit=2&after_id=${first.json.last_id}`);
    expect(next.json.first_id).not.toBe(first.json.first_id);
    const back = await get(`?limit=2&before_id=${next.json.first_id}`);
    expect(back.json.data.map((model: any) => model.id)).toEqual(first.json.data.map((model: any) => model.id));
    const all = await get('?limit=1000');
    expect(all.json.has_more).toBe(false);
    expect((await get('?limit=0')).status).toBe(400);
  });

  test('single model and unknown model', async () => {
    expect(
      (await fetch(`${simulator.url}/v1/models/claude-3-opus-20240229`, { headers: goodHeaders }).then((response) => response.json())) as any,
    ).toMatchObject({ id: 'claude-3-opus-20240229' });
    expect((await fetch(`${simulator.url}/v1/models/nope`, { headers: goodHeaders })).status).toBe(404);
    expect((await fetch(`${simulator.url}/v1/models`)).status).toBe(401);
  });
});

describe('faults', () => {
  const cases: [Parameters<typeof simulator.inject>[0], number, string][] = [
    [{ kind: 'rate_limit', retryAfterSeconds: 7 }, 429, 'rate_limit_error'],
    [{ kind: 'quota' }, 402, 'billing_error'],
    [{ kind: 'server_error' }, 500, 'api_error'],
    [{ kind: 'overloaded' }, 529, 'overloaded_error'],
    [{ kind: 'auth' }, 401, 'authentication_error'],
    [{ kind: 'model_not_found' }, 404, 'not_found_error'],
    [{ kind: 'context_length' }, 400, 'invalid_request_error'],
  ];
  for (const [fault, status, type] of cases) {
    test(`${fault.kind} → ${status} ${type}`, async () => {
      simulator.inject(fault);
      const response = await post({ ...base, messages: hi });
      expect(response.status).toBe(status);
      expect(response.json).toEqual({ type: 'error', error: { type, message: expect.any(String) }, request_id: response.headers.get('request-id') });
      if (fault.kind === 'rate_limit') expect(response.headers.get('retry-after')).toBe('7');
      if (fault.kind === 'overloaded') expect(response.json.error.message).toBe('Overloaded');
      if (fault.kind === 'context_length') expect(response.json.error.message).toMatch(/^prompt is too long: \d+ tokens > 200000 maximum$/);
      expect(response.headers.get('x-should-retry')).toBe(String(status === 429 || status >= 500));
      expect((await post({ ...base, messages: hi })).status).toBe(200);
    });
  }

  test('status, delay, reset and sticky faults', async () => {
    simulator.inject(
      { kind: 'status', status: 418, body: { custom: true }, headers: { 'x-custom': 'yes' } },
      { kind: 'delay', delayMs: 150 },
      { kind: 'reset' },
    );
    const custom = await post({ ...base, messages: hi });
    expect([custom.status, custom.json, custom.headers.get('x-custom')]).toEqual([418, { custom: true }, 'yes']);
    const started = Date.now();
    expect((await post({ ...base, messages: hi })).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await expect(post({ ...base, messages: hi })).rejects.toThrow();
    await fetch(`${simulator.url}/__sim/faults`, { method: 'POST', body: JSON.stringify({ sticky: { kind: 'overloaded' } }) });
    expect((await post({ ...base, messages: hi })).status).toBe(529);
    expect((await post({ ...base, messages: hi })).status).toBe(529);
  });

  test('mid-stream error event after N deltas, then the stream closes', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 2 });
    const response = await post({ ...base, stream: true, messages: [user('a fairly long question to stream')] });
    expect(response.status).toBe(200);
    const list = events(response.text);
    expect(list.filter((item) => item.event === 'content_block_delta')).toHaveLength(2);
    expect(list.at(-1)).toEqual({ event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
    expect(list.some((item) => item.event === 'message_stop')).toBe(false);
  });

  test('mid-stream reset cuts the body; slow stream spaces events', async () => {
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 1 });
    const body = { ...base, stream: true, messages: [user('a fairly long question to stream')] };
    const response = await fetch(`${simulator.url}/v1/messages`, { method: 'POST', headers: goodHeaders, body: JSON.stringify(body) });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let received = '';
    await expect(
      (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          received += new TextDecoder().decode(value);
        }
      })(),
    ).rejects.toThrow();
    expect(received).toContain('text_delta');
    expect(received).not.toContain('message_stop');
    simulator.inject({ kind: 'slow_stream', delayMs: 20 });
    const started = Date.now();
    const slow = await post({ ...base, stream: true, messages: hi });
    expect(events(slow.text).at(-1)?.event).toBe('message_stop');
    expect(Date.now() - started).toBeGreaterThanOrEqual(20 * 6);
  });
});
