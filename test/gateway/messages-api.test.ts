// The official `@anthropic-ai/sdk` against Keyway's `/v1/messages`, routed to Anthropic and to OpenAI.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { LOUVRE_AS_TEXT, LOUVRE_RESULT, PARIS_AS_TEXT, PARIS_RESULT } from '../fixtures/anthropic/search-results.ts';
import { betaTool } from '@anthropic-ai/sdk/helpers/beta/json-schema';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { accounted, rowOf } from '../accounting/booking.ts';
import { rejectionOf } from '../clients/client-fixtures.ts';

const OPENAI_KEY = 'sk-proj-MessagesOpenAIKey0000000000000001';
const ANTHROPIC_KEY = 'sk-ant-api03-MessagesAnthropicKey00000000001';
let openai: SimulatorHandle;
let anthropic: SimulatorHandle;
let gateway: TestGateway;
let client: Anthropic;

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_ANTHROPIC_BASE_URL: anthropic.url } });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'anthropic', api_key: ANTHROPIC_KEY },
  ]);
  client = new Anthropic({ baseURL: gateway.url, apiKey: gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  await anthropic.stop();
});

const tools: Anthropic.Tool[] = [
  { name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
];

describe.each([
  ['anthropic', 'claude-3-opus-20240229'],
  ['openai', 'gpt-4o'],
])('Anthropic SDK routed to %s', (provider, model) => {
  test('a message', async () => {
    const { data: message, response } = await client.messages
      .create({ model, max_tokens: 200, system: 'Be terse.', messages: [{ role: 'user', content: 'Hello Claude' }] })
      .withResponse();
    expect(message.type).toBe('message');
    expect(message.content[0]?.type === 'text' ? message.content[0].text : '').toBe('Echo: Hello Claude');
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-provider-used')).toBe(provider);
  });

  test('a streamed message', async () => {
    const stream = client.messages.stream({ model, max_tokens: 200, messages: [{ role: 'user', content: 'Stream please' }] });
    let text = '';
    stream.on('text', (delta) => {
      text += delta;
    });
    const final = await stream.finalMessage();
    expect(text).toBe('Echo: Stream please');
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBeGreaterThan(0);
  });

  test('a tool round trip', async () => {
    const first = await client.messages.create({ model, max_tokens: 200, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    expect(first.stop_reason).toBe('tool_use');
    const toolUse = first.content.find((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use');
    expect(toolUse?.input).toEqual({ city: 'sample' });
    const second = await client.messages.create({
      model,
      max_tokens: 200,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse?.id ?? '', content: '21C' }] },
      ],
    });
    expect(second.content[0]?.type === 'text' ? second.content[0].text : '').toBe('Tool results: 21C');
  });
});

// Claude Code after reading a screenshot: the tool result holds text and the image, with breakpoints.
describe('a tool result holding an image, and cache_control on tools and tool results', () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
  const cachedTools: Anthropic.Tool[] = [
    {
      name: 'Read',
      description: 'Read a file',
      input_schema: { type: 'object', properties: { file_path: { type: 'string' } } },
      cache_control: { type: 'ephemeral' },
    },
  ];
  const toolResult: Anthropic.ToolResultBlockParam = {
    type: 'tool_result',
    tool_use_id: 'toolu_01',
    content: [
      { type: 'text', text: 'shot.png, 1x1', cache_control: { type: 'ephemeral' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png }, cache_control: { type: 'ephemeral' } },
    ],
    is_error: true,
    cache_control: { type: 'ephemeral' },
  };
  const conversation: Anthropic.MessageParam[] = [
    { role: 'user', content: 'Look at shot.png' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Read', input: { file_path: 'shot.png' } }] },
    { role: 'user', content: [toolResult] },
  ];

  test('Anthropic receives the tool_result block and the tool as sent, and no warning comes back', async () => {
    anthropic.reset();
    const { response } = await client.messages
      .create({ model: 'claude-sonnet-4-5-20250929', max_tokens: 200, tools: cachedTools, messages: conversation })
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    const sent = anthropic.inferenceRequests()[0]?.body as { tools: unknown[]; messages: Array<{ content: unknown[] }> };
    expect(sent.tools).toEqual(cachedTools);
    expect(sent.messages.at(-1)?.content).toEqual([toolResult]);
  });

  test('Anthropic receives them streamed too', async () => {
    anthropic.reset();
    await client.messages.stream({ model: 'claude-sonnet-4-5-20250929', max_tokens: 200, tools: cachedTools, messages: conversation }).finalMessage();
    const sent = anthropic.inferenceRequests()[0]?.body as { tools: unknown[]; messages: Array<{ content: unknown[] }> };
    expect(sent.tools).toEqual(cachedTools);
    expect(sent.messages.at(-1)?.content).toEqual([toolResult]);
  });

  test('OpenAI receives a text-only tool message, and the dropped image is warned', async () => {
    openai.reset();
    const { response } = await client.messages.create({ model: 'gpt-4o', max_tokens: 200, tools: cachedTools, messages: conversation }).withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-keyway-warnings')).toContain('dropped non-text tool_result content at messages[2].content[0]');
    const sent = openai.inferenceRequests()[0]?.body as { tools: unknown[]; messages: unknown[] };
    expect(sent.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'toolu_01', content: 'Error: shot.png, 1x1' });
    expect(JSON.stringify(sent)).not.toContain('cache_control');
  });
});

// A RAG client: search results as top-level user content and as what its search tool returned.
// The search results both describes below send: what a RAG client's search tool returns.
const searchTools: Anthropic.Tool[] = [{ name: 'search_docs', input_schema: { type: 'object', properties: { query: { type: 'string' } } } }];
const parisResult = PARIS_RESULT;
const louvre = LOUVRE_RESULT;

describe('search results, in a user turn and in a tool result', () => {
  const paris: Anthropic.SearchResultBlockParam = { ...parisResult, cache_control: { type: 'ephemeral' } };
  const toolResult: Anthropic.ToolResultBlockParam = { type: 'tool_result', tool_use_id: 'toolu_01', content: [louvre], cache_control: { type: 'ephemeral' } };
  const conversation: Anthropic.MessageParam[] = [
    { role: 'user', content: [paris, { type: 'text', text: 'And the Louvre?' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'search_docs', input: { query: 'louvre' } }] },
    { role: 'user', content: [toolResult] },
  ];
  const parisText = PARIS_AS_TEXT;
  const louvreText = LOUVRE_AS_TEXT;
  /** What OpenAI was sent: the search results as text (the tool message's content as given), nothing only Anthropic reads. */
  const expectSentAsText = (toolContent: unknown): void => {
    const sent = openai.inferenceRequests()[0]?.body as { messages: unknown[] };
    expect(sent.messages[0]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: parisText },
        { type: 'text', text: 'And the Louvre?' },
      ],
    });
    expect(sent.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'toolu_01', content: toolContent });
    for (const field of ['search_result', 'citations', 'cache_control']) expect(JSON.stringify(sent)).not.toContain(field);
  };

  /** The blocks Anthropic's simulator received, which refuses a search result Anthropic would refuse. */
  function sentToAnthropic(): Array<{ role: string; content: unknown }> {
    return (anthropic.inferenceRequests()[0]?.body as { messages: Array<{ role: string; content: unknown }> }).messages;
  }

  test('Anthropic receives every search result block as sent, citations flag and cache_control included, and no warning', async () => {
    anthropic.reset();
    const { data: message, response } = await client.messages
      .create({ model: 'claude-sonnet-4-5-20250929', max_tokens: 200, tools: searchTools, messages: conversation })
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    expect(sentToAnthropic()).toEqual(conversation);
    expect(message.content[0]?.type === 'text' ? message.content[0].text : '').toContain('Louvre hours kb://louvre Open 9:00 to 18:00.');
  });

  test('Anthropic receives them streamed too', async () => {
    anthropic.reset();
    await client.messages.stream({ model: 'claude-sonnet-4-5-20250929', max_tokens: 200, tools: searchTools, messages: conversation }).finalMessage();
    expect(sentToAnthropic()).toEqual(conversation);
  });

  test('a malformed search result is refused as Anthropic refuses it, before any upstream call', async () => {
    anthropic.reset();
    const { source: _source, ...withoutSource } = paris;
    const refused = await rejectionOf(
      client.messages.create({
        model: 'claude-sonnet-4-5-20250929',
        max_tokens: 200,
        messages: [{ role: 'user', content: [withoutSource as Anthropic.SearchResultBlockParam] }],
      }),
    );
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as InstanceType<typeof Anthropic.BadRequestError>).message).toContain('messages[0].content[0].source');
    expect(anthropic.inferenceRequests()).toEqual([]);
  });

  test('OpenAI receives the title, source and text as text, without citations or cache_control, and the change is warned', async () => {
    openai.reset();
    const { response } = await client.messages.create({ model: 'gpt-4o', max_tokens: 200, tools: searchTools, messages: conversation }).withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-keyway-warnings')).toContain('sent search_result blocks as text (title, source, content): only Anthropic takes them');
    expectSentAsText(louvreText);
  });

  test('a fallback from Anthropic to OpenAI sends them as text too, warned, and nothing only Anthropic reads', async () => {
    anthropic.reset();
    openai.reset();
    anthropic.inject({ kind: 'server_error' });
    const { response } = await client.messages
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        tools: searchTools,
        messages: conversation,
        routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] },
      } as Anthropic.MessageCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(sentToAnthropic()).toEqual(conversation);
    expect(response.headers.get('x-keyway-warnings')).toContain('openai: the search results at messages[0] were sent as text');
    expectSentAsText([{ type: 'text', text: louvreText }]);
  });
});

// A RAG client that enabled citations: Anthropic's own Messages API serves it, so the answer keeps them.
describe('citations from search results and documents', () => {
  const MODEL = 'claude-sonnet-4-5-20250929';
  const paris = parisResult;
  const conversation: Anthropic.MessageParam[] = [
    { role: 'user', content: [paris, { type: 'text', text: 'And the Louvre?' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'search_docs', input: { query: 'louvre' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [louvre] }] },
  ];
  /** What the simulator cites, as Anthropic would: each search result by its first block, counted across the request. */
  const citations: Anthropic.TextCitation[] = [
    {
      type: 'search_result_location',
      cited_text: 'Sunny, 21C.',
      search_result_index: 0,
      source: 'https://docs.example.com/paris',
      title: 'Paris weather',
      start_block_index: 0,
      end_block_index: 1,
    },
    {
      type: 'search_result_location',
      cited_text: 'Open 9:00 to 18:00.',
      search_result_index: 1,
      source: 'kb://louvre',
      title: 'Louvre hours',
      start_block_index: 0,
      end_block_index: 1,
    },
  ];
  /** A later turn that sends the cited answer back, as the SDK returned it. */
  const followUp: Anthropic.MessageParam[] = [
    ...conversation,
    { role: 'assistant', content: [{ type: 'text', text: 'Sunny in Paris; the Louvre opens at 9:00.', citations }] },
    { role: 'user', content: 'Thanks! Anything else?' },
  ];
  const fallback = { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] };

  function sentToAnthropic(): unknown {
    return (anthropic.inferenceRequests()[0]?.body as { messages: unknown }).messages;
  }

  function citationsOf(message: Anthropic.Message): unknown[] {
    return message.content.flatMap((block) => (block.type === 'text' ? (block.citations ?? []) : []));
  }

  /** The `citations_delta` events' data lines of an Anthropic stream, byte for byte. */
  async function citationDeltaLines(response: Response): Promise<string[]> {
    return (await readSse(response)).filter((data) => data.includes('"citations_delta"'));
  }

  test("Anthropic's answer keeps the citations Anthropic wrote on its text block, with no warning", async () => {
    anthropic.reset();
    const { data: message, response } = await client.messages
      .create({ model: MODEL, max_tokens: 200, tools: searchTools, messages: conversation })
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    expect(sentToAnthropic()).toEqual(conversation);
    expect(citationsOf(message)).toEqual(citations);
    expect(message.content[0]?.type === 'text' ? message.content[0].text : '').toContain('Louvre hours kb://louvre Open 9:00 to 18:00.');
  });

  test('streamed: the citations_delta events arrive exactly as Anthropic sent them, and the SDK assembles the same citations', async () => {
    anthropic.reset();
    const body = { model: MODEL, max_tokens: 200, stream: true, tools: searchTools, messages: conversation };
    const direct = await fetch(`${anthropic.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': ANTHROPIC_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(body),
    });
    const relayed = await call(gateway, 'POST', '/v1/messages', body, { key: gateway.defaultAdminKey, headers: { 'anthropic-version': '2023-06-01' } });
    const lines = await citationDeltaLines(relayed);
    expect(lines).toHaveLength(citations.length);
    expect(lines).toEqual(await citationDeltaLines(direct));
    const stream = client.messages.stream({ model: MODEL, max_tokens: 200, tools: searchTools, messages: conversation });
    const cited: unknown[] = [];
    stream.on('citation', (citation) => void cited.push(citation));
    const final = await stream.finalMessage();
    expect(cited).toEqual(citations);
    expect(citationsOf(final)).toEqual(citations);
  });

  test('streamed or not, a cited answer books the same usage row: the usage Anthropic reported', async () => {
    const rows = [];
    for (const streamed of [false, true]) {
      // A fresh simulator each time: the second call would otherwise read the first one's prompt cache.
      anthropic.reset();
      const requestId = `req_cited_${streamed ? 'streamed' : 'whole'}_${Date.now()}`;
      const params = { model: MODEL, max_tokens: 200, tools: searchTools, messages: conversation };
      const message = streamed
        ? await client.messages.stream(params, { headers: { 'x-request-id': requestId } }).finalMessage()
        : await client.messages.create(params, { headers: { 'x-request-id': requestId } });
      expect(citationsOf(message)).toEqual(citations);
      const row = await rowOf(gateway, requestId);
      expect(row.streamed).toBe(streamed);
      expect(row.inputTokens).toBe(
        message.usage.input_tokens + (message.usage.cache_creation_input_tokens ?? 0) + (message.usage.cache_read_input_tokens ?? 0),
      );
      expect(row.outputTokens).toBe(message.usage.output_tokens);
      expect(row.costUsd).toBeGreaterThan(0);
      rows.push(accounted(row));
    }
    expect(rows[1]).toEqual(rows[0]);
  });

  test("a plain-text document with citations reaches Anthropic as sent, and the answer keeps Anthropic's char_location citation", async () => {
    anthropic.reset();
    const handbook: Anthropic.DocumentBlockParam = {
      type: 'document',
      source: { type: 'text', media_type: 'text/plain', data: 'Staff get ten days of leave.' },
      title: 'Handbook',
      citations: { enabled: true },
    };
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: [handbook, { type: 'text', text: 'How much leave?' }] }];
    const message = await client.messages.create({ model: MODEL, max_tokens: 200, messages });
    expect(sentToAnthropic()).toEqual(messages);
    expect(citationsOf(message)).toEqual([
      {
        type: 'char_location',
        cited_text: 'Staff get ten days of leave.',
        document_index: 0,
        document_title: 'Handbook',
        start_char_index: 0,
        end_char_index: 28,
        file_id: null,
      },
    ]);
  });

  test.each([false, true])(
    'a fallback to OpenAI (streamed: %p) gets text without citations, after Anthropic got the conversation as sent',
    async (streamed) => {
      anthropic.reset();
      openai.reset();
      anthropic.inject({ kind: 'server_error' });
      // No more searching: the answer is text, and text is what a citation would sit on.
      const params = { model: 'claude-haiku-4-5', max_tokens: 200, tools: searchTools, tool_choice: { type: 'none' }, messages: followUp, routing: fallback };
      const { data: message, response } = streamed
        ? await client.messages
            .stream(params as Anthropic.MessageStreamParams)
            .withResponse()
            .then(async ({ response, data }) => ({ response, data: await data.finalMessage() }))
        : await client.messages.create(params as Anthropic.MessageCreateParamsNonStreaming).withResponse();
      expect(response.headers.get('x-provider-used')).toBe('openai');
      // Anthropic's own API got the previous answer with its citations, as the client sent it.
      expect(sentToAnthropic()).toEqual(followUp);
      expect(response.headers.get('x-keyway-warnings')).toContain('openai: the search results at messages[0] were sent as text');
      expect(citationsOf(message)).toEqual([]);
      expect(message.content[0]?.type === 'text' ? message.content[0].text : '').toBe('Echo: Thanks! Anything else?');
      const sent = openai.inferenceRequests()[0]?.body as { messages: unknown[] };
      expect(sent.messages[0]).toEqual({
        role: 'user',
        content: [
          { type: 'text', text: 'Search result: Paris weather\n\nSource: https://docs.example.com/paris\n\nSunny, 21C.' },
          { type: 'text', text: 'And the Louvre?' },
        ],
      });
      for (const field of ['search_result', 'citations', 'cache_control']) expect(JSON.stringify(sent)).not.toContain(field);
    },
  );

  test("a fallback from OpenAI to Anthropic gets Anthropic's citations, and none of the translation's warnings", async () => {
    anthropic.reset();
    openai.reset();
    openai.inject({ kind: 'server_error' });
    const { data: message, response } = await client.messages
      .create({
        model: 'gpt-4o-mini',
        max_tokens: 200,
        tools: searchTools,
        messages: conversation,
        routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] },
      } as Anthropic.MessageCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(openai.inferenceRequests()).toHaveLength(1);
    expect(sentToAnthropic()).toEqual(conversation);
    expect(citationsOf(message)).toEqual(citations);
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
  });
});

describe('message threads: Keyway holds none, so the SDK sends the whole history', () => {
  const weather = () =>
    betaTool({
      name: 'get_weather',
      description: 'Weather in a city',
      inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } as const,
      run: (input) => `sunny in ${input.city}`,
    });

  /** The bodies the SDK sent to Keyway, with the status of each answer. */
  function recordingClient(sent: Array<{ body: Record<string, unknown>; status: number }>): Anthropic {
    const recording = async (input: string | URL | Request, init?: RequestInit) => {
      const response = await fetch(input, init);
      sent.push({ body: JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>, status: response.status });
      return response;
    };
    return new Anthropic({ baseURL: gateway.url, apiKey: gateway.defaultAdminKey, maxRetries: 0, fetch: recording as typeof fetch });
  }

  test.each([
    ['anthropic', 'claude-3-opus-20240229'],
    ['openai', 'gpt-4o-mini'],
  ])("the SDK's default tool runner completes a tool round trip on %s (%s)", async (_provider, model) => {
    const sent: Array<{ body: Record<string, unknown>; status: number }> = [];
    const final = await recordingClient(sent).beta.messages.toolRunner({
      model,
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weather()],
    });
    expect(final.content[0]?.type === 'text' ? final.content[0].text : '').toBe('Tool results: sunny in sample');
    // The first try asks for a thread and is refused; every later request carries the whole history.
    expect(sent[0]).toMatchObject({ status: 400, body: { thread: { type: 'create' } } });
    const unthreaded = sent.slice(1);
    expect(unthreaded.map((request) => [request.status, 'thread' in request.body, (request.body.messages as unknown[]).length])).toEqual([
      [200, false, 1],
      [200, false, 3],
    ]);
  });

  test('a request with `thread` is refused with the error the SDK recovers from, before any upstream call', async () => {
    anthropic.reset();
    for (const thread of [{ type: 'create' }, { type: 'continue', previous_message_id: 'msg_01' }]) {
      const response = await call(gateway, 'POST', '/v1/messages', {
        model: 'claude-3-opus-20240229',
        max_tokens: 50,
        thread,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { type: string; error: { type: string; message: string; details: unknown } };
      expect(body.type).toBe('error');
      expect(body.error.type).toBe('invalid_request_error');
      expect(body.error.details).toEqual({ error_code: 'thread_unsupported_request', unsupported: ['thread'] });
      expect(body.error.message).toContain('does not hold message threads');
    }
    expect(anthropic.inferenceRequests()).toEqual([]);
  });

  test('client.beta.messages.thread() gets the refusal', async () => {
    const thread = client.beta.messages.thread({ model: 'claude-3-opus-20240229', max_tokens: 50 });
    const refused = await rejectionOf(thread.send({ role: 'user', content: 'hi' }));
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as InstanceType<typeof Anthropic.BadRequestError>).message).toContain('does not hold message threads');
  });
});

describe('Anthropic dialect details', () => {
  test('errors come in the Anthropic shape', async () => {
    const response = await call(gateway, 'POST', '/v1/messages', { model: 'claude-3-opus-20240229', messages: [{ role: 'user', content: 'x' }] });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('max_tokens');
  });

  test("errors carry request-id, Keyway's own request id, which the SDK reads into error.requestID", async () => {
    const unknownModel = await rejectionOf(
      client.messages.create({ model: 'no-such-model-anywhere', max_tokens: 20, messages: [{ role: 'user', content: 'x' }] }),
    );
    const badKey = await rejectionOf(
      new Anthropic({ baseURL: gateway.url, apiKey: 'kw-not-a-real-key', maxRetries: 0 }).messages.create({
        model: 'claude-3-opus-20240229',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'x' }],
      }),
    );
    expect(badKey).toBeInstanceOf(Anthropic.AuthenticationError);
    for (const error of [unknownModel, badKey]) {
      expect(error).toBeInstanceOf(Anthropic.APIError);
      const { requestID, headers } = error as InstanceType<typeof Anthropic.APIError>;
      expect(requestID).toBeTruthy();
      expect(requestID).toBe(headers?.get('x-request-id') ?? undefined);
    }
  });

  test('a wrong method on the Messages paths is 405 in the Anthropic shape, with Allow and request-id', async () => {
    for (const [method, path] of [
      ['GET', '/v1/messages'],
      ['PUT', '/v1/messages'],
      ['GET', '/v1/messages/count_tokens'],
    ] as const) {
      const response = await fetch(`${gateway.url}${path}`, { method, headers: { 'x-request-id': 'rid-wrong-method' } });
      const body = (await response.json()) as { type: string; error: { type: string; code: string }; request_id: string };
      expect({ method, path, status: response.status, allow: response.headers.get('allow') }).toEqual({ method, path, status: 405, allow: 'POST' });
      expect(response.headers.get('request-id')).toBe('rid-wrong-method');
      expect(response.headers.get('x-request-id')).toBe('rid-wrong-method');
      expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', code: 'method_not_allowed' }, request_id: 'rid-wrong-method' });
    }
  });

  // The SDK's batches API (not served) got OpenAI's shape there until QA20 (seed F2).
  test('an unknown path under /v1/messages is 404 in the Anthropic shape: the SDK reads a NotFoundError with its request id', async () => {
    const failure = await rejectionOf(client.messages.batches.list());
    expect(failure).toBeInstanceOf(Anthropic.NotFoundError);
    const { requestID, error } = failure as InstanceType<typeof Anthropic.NotFoundError>;
    expect(requestID).toBeTruthy();
    expect(error).toMatchObject({ type: 'error', error: { type: 'not_found_error', code: 'not_found' }, request_id: requestID });
    const response = await fetch(`${gateway.url}/v1/messages/nothing/here`, { headers: { 'x-request-id': 'rid-unknown-path' } });
    expect({ status: response.status, requestId: response.headers.get('request-id') }).toEqual({ status: 404, requestId: 'rid-unknown-path' });
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' }, request_id: 'rid-unknown-path' });
  });

  test("answers carry request-id too: a message's _request_id, and a stream's header", async () => {
    const request = { model: 'claude-3-opus-20240229', max_tokens: 20, messages: [{ role: 'user' as const, content: 'id please' }] };
    const { request_id: requestId, response } = await client.messages.create(request).withResponse();
    expect(requestId).toBeTruthy();
    expect(requestId).toBe(response.headers.get('x-request-id'));
    const message = await client.messages.create(request);
    expect(message._request_id).toMatch(/^req_/);
    const streamed = await client.messages.create({ ...request, stream: true }).withResponse();
    for await (const _event of streamed.data);
    expect(streamed.request_id).toBeTruthy();
    expect(streamed.request_id).toBe(streamed.response.headers.get('x-request-id'));
  });

  test('x-api-key authenticates like Authorization: Bearer', async () => {
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': gateway.defaultAdminKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-3-opus-20240229', max_tokens: 20, messages: [{ role: 'user', content: 'key header' }] }),
    });
    expect(response.status).toBe(200);
  });

  test('cache_control and thinking reach Anthropic untouched', async () => {
    anthropic.reset();
    await client.messages.create({
      model: 'claude-sonnet-4-5-20250929',
      max_tokens: 3000,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      system: [{ type: 'text', text: 'A long cached system prompt.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'Think about it' }],
    });
    const sent = anthropic.inferenceRequests()[0]?.body as { system: Array<{ cache_control?: unknown }>; thinking?: unknown };
    expect(sent.system[0]?.cache_control).toEqual({ type: 'ephemeral' });
    expect(sent.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
  });

  test('a matched stop sequence is named, as Anthropic named it, streamed or not', async () => {
    const request = {
      model: 'claude-3-opus-20240229',
      max_tokens: 100,
      stop_sequences: ['END', 'STOP'],
      messages: [{ role: 'user' as const, content: 'hello STOP there' }],
    };
    const message = await client.messages.create(request);
    expect([message.stop_reason, message.stop_sequence]).toEqual(['stop_sequence', 'STOP']);
    const streamed = await client.messages.stream(request).finalMessage();
    expect([streamed.stop_reason, streamed.stop_sequence]).toEqual(['stop_sequence', 'STOP']);
  });

  test('OpenAI does not say whether a stop sequence matched: end_turn, streamed or not', async () => {
    const request = { model: 'gpt-4o', max_tokens: 100, stop_sequences: ['STOP'], messages: [{ role: 'user' as const, content: 'hello STOP there' }] };
    const message = await client.messages.create(request);
    expect([message.stop_reason, message.stop_sequence]).toEqual(['end_turn', null]);
    const streamed = await client.messages.stream(request).finalMessage();
    expect([streamed.stop_reason, streamed.stop_sequence]).toEqual(['end_turn', null]);
  });

  test('count_tokens for Anthropic models', async () => {
    const counted = await client.messages.countTokens({ model: 'claude-3-opus-20240229', messages: [{ role: 'user', content: 'count these tokens' }] });
    expect(counted.input_tokens).toBeGreaterThan(0);
  });

  test("count_tokens goes to the model's own provider whatever the routing: a substitute could not count it", async () => {
    const body = { model: 'claude-3-opus-20240229', messages: [{ role: 'user', content: 'count these tokens' }], routing: { strategy: 'cost_optimized' } };
    const response = await call(gateway, 'POST', '/v1/messages/count_tokens', body, { key: gateway.defaultAdminKey });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
  });
});

describe('structured output sent to OpenAI (output_config.format)', () => {
  const sentFormat = (): unknown => (openai.inferenceRequests().at(-1)?.body as { response_format?: unknown } | undefined)?.response_format;
  const ask = (schema: Record<string, unknown>) =>
    client.messages.create({
      model: 'gpt-4o',
      max_tokens: 50,
      output_config: { format: { type: 'json_schema', schema } },
      messages: [{ role: 'user', content: 'JSON please' }],
    } as never);

  test("a schema that meets OpenAI's strict rules is sent strict, keeping Anthropic's guarantee (QA18: best effort)", async () => {
    openai.reset();
    const closed = {
      type: 'object',
      properties: {
        city: { type: 'string' },
        days: { type: 'array', items: { type: 'object', properties: { t: { type: 'number' } }, required: ['t'], additionalProperties: false } },
      },
      required: ['city', 'days'],
      additionalProperties: false,
    };
    await ask(closed);
    expect(sentFormat()).toEqual({ type: 'json_schema', json_schema: { name: 'response', schema: closed, strict: true } });
  });

  test('a schema strict mode would refuse (an optional property, an open object) is sent as before, not strict', async () => {
    for (const schema of [
      { type: 'object', properties: { city: { type: 'string' }, note: { type: 'string' } }, required: ['city'], additionalProperties: false },
      {
        type: 'object',
        properties: { inner: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } },
        required: ['inner'],
        additionalProperties: false,
      },
    ]) {
      openai.reset();
      await ask(schema);
      expect(sentFormat()).toEqual({ type: 'json_schema', json_schema: { name: 'response', schema } });
    }
  });
});
