// Content blocking reads what reaches a provider as the client wrote it, beside the translation the
// scan always read: a `/v1/messages/count_tokens` body (Anthropic counts it as sent), the blocks a
// Messages request for Anthropic's own API carries that have no translation (server tool calls and
// results, MCP blocks, citations), and the items a Responses request replays to OpenAI's own API
// (hosted tools' calls, reasoning content). Each refused with the detector named and no upstream call;
// the same requests without the secret are served. Driven over HTTP as a team's member sends them.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { type ErrorBody, startTeamGateway, type TeamGateway } from './team-fixture.ts';

const ANTHROPIC_KEY = 'sk-ant-api03-NativeBlocksBlockingAnthropicKey01';
const CARD = '4111 1111 1111 1111';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const OPENAI_LOOKALIKE = `sk-proj-${'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNbVcXz'}`;
const MODEL = 'claude-haiku-4-5';

let anthropic: SimulatorHandle;
let team: TeamGateway;

beforeAll(async () => {
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  team = await startTeamGateway({ usage_controls: { block_sensitive_content: true } }, { env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url } });
  await addProviderKeys(team.gateway, [{ name: 'anthropic', api_key: ANTHROPIC_KEY }], team.adminKey);
});

afterAll(async () => {
  await team?.stop();
  await anthropic?.stop();
});

interface AnthropicErrorBody {
  type: string;
  error: { type: string; code: string; message: string; detector?: string };
}

function post(path: string, body: unknown): Promise<Response> {
  return call(team.gateway, 'POST', path, body, { key: team.memberKey });
}

/** The Anthropic-shaped refusal: 400, the detector and the place named, never the secret. */
async function expectAnthropicRefusal(response: Response, detector: string, place: string, secret: string): Promise<void> {
  const body = (await response.json()) as AnthropicErrorBody;
  expect(response.status).toBe(400);
  expect(body.type).toBe('error');
  expect(body.error.type).toBe('invalid_request_error');
  expect(body.error.code).toBe('sensitive_content_blocked');
  expect(body.error.detector).toBe(detector);
  expect(body.error.message).toContain(place);
  expect(body.error.message).not.toContain(secret);
}

describe('POST /v1/messages/count_tokens', () => {
  test.each([
    ['a user turn', { messages: [{ role: 'user', content: `my card is ${CARD}` }] }, 'payment_card', 'message 0'],
    ['the system prompt', { system: [{ type: 'text', text: `pay to ${IBAN}` }], messages: [{ role: 'user', content: 'hi' }] }, 'iban', 'the system prompt'],
    [
      'a tool_use input (the card as a JSON number)',
      {
        messages: [
          { role: 'user', content: 'charge it' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'charge', input: { card: 4111111111111111 } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'done' }] },
        ],
      },
      'payment_card',
      'message 1, content block 0 (tool_use)',
    ],
    [
      "a tool_result's text",
      {
        messages: [
          { role: 'user', content: 'read it' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'read', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: `key ${OPENAI_LOOKALIKE}` }] }] },
        ],
      },
      'openai_api_key',
      'message 2, content block 0 (tool_result)',
    ],
  ])('%s is scanned: 400 in the Anthropic shape, Anthropic never asked to count', async (_name, body, detector, place) => {
    anthropic.reset();
    await expectAnthropicRefusal(await post('/v1/messages/count_tokens', { model: MODEL, ...body }), detector, place, '4111');
    expect(anthropic.inferenceRequests()).toEqual([]);
  });

  test('a clean body is counted by Anthropic, as sent', async () => {
    anthropic.reset();
    const body = { model: MODEL, system: 'be terse', messages: [{ role: 'user', content: 'count these tokens, order 20240917' }] };
    const response = await post('/v1/messages/count_tokens', body);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
    expect(anthropic.inferenceRequests().map((request) => request.path)).toEqual(['/v1/messages/count_tokens']);
  });
});

describe("/v1/messages for Anthropic's own API (a server tool)", () => {
  const webSearch = { type: 'web_search_20250305', name: 'web_search', max_uses: 3 };

  function searchHistory(query: string, title: string): unknown[] {
    return [
      { role: 'user', content: 'look it up' },
      {
        role: 'assistant',
        content: [
          { type: 'server_tool_use', id: 'srvtoolu_01', name: 'web_search', input: { query } },
          {
            type: 'web_search_tool_result',
            tool_use_id: 'srvtoolu_01',
            content: [{ type: 'web_search_result', title, url: 'https://example.com/a', encrypted_content: 'EqQBCioIAhgBIiQ3YTk5', page_age: null }],
          },
          { type: 'text', text: 'Found it.' },
        ],
      },
      { role: 'user', content: 'thanks, go on' },
    ];
  }

  test.each([
    ["a server_tool_use's input", searchHistory(`card ${CARD}`, 'Results'), 'payment_card', 'message 1, content block 0 (server_tool_use)'],
    ["a web_search_tool_result's title", searchHistory('weather', `pay to ${IBAN}`), 'iban', 'message 1, content block 1 (web_search_tool_result)'],
    [
      "a web_fetch_tool_result's fetched document",
      [
        { role: 'user', content: 'fetch it' },
        {
          role: 'assistant',
          content: [
            { type: 'server_tool_use', id: 'srvtoolu_02', name: 'web_fetch', input: { url: 'https://example.com/b' } },
            {
              type: 'web_fetch_tool_result',
              tool_use_id: 'srvtoolu_02',
              content: {
                type: 'web_fetch_result',
                url: 'https://example.com/b',
                content: { type: 'document', source: { type: 'text', media_type: 'text/plain', data: `token ${OPENAI_LOOKALIKE}` } },
              },
            },
          ],
        },
        { role: 'user', content: 'summarise' },
      ],
      'openai_api_key',
      'message 1, content block 1 (web_fetch_tool_result)',
    ],
    [
      "an mcp_tool_result's content",
      [
        { role: 'user', content: 'ask the CRM' },
        {
          role: 'assistant',
          content: [
            { type: 'mcp_tool_use', id: 'mcptoolu_01', name: 'lookup', server_name: 'crm', input: { customer: 'Ada' } },
            { type: 'mcp_tool_result', tool_use_id: 'mcptoolu_01', content: [{ type: 'text', text: `card on file ${CARD}` }] },
          ],
        },
        { role: 'user', content: 'and?' },
      ],
      'payment_card',
      'message 1, content block 1 (mcp_tool_result)',
    ],
    [
      "a text block's citations",
      [
        { role: 'user', content: 'what does it say?' },
        {
          role: 'assistant',
          content: [
            {
              type: 'text',
              text: 'It names an account.',
              citations: [
                {
                  type: 'web_search_result_location',
                  url: 'https://example.com/a',
                  title: 'Bank',
                  encrypted_index: 'Eo8BCioIAhgB',
                  cited_text: `IBAN ${IBAN}`,
                },
              ],
            },
          ],
        },
        { role: 'user', content: 'thanks' },
      ],
      'iban',
      'message 1, content block 0 (text citations)',
    ],
  ])('%s is scanned: 400, Anthropic never called', async (_name, messages, detector, place) => {
    anthropic.reset();
    const response = await post('/v1/messages', { model: MODEL, max_tokens: 50, tools: [webSearch], messages });
    await expectAnthropicRefusal(response, detector, place, '4111');
    expect(anthropic.inferenceRequests()).toEqual([]);
  });

  test('the same history without a secret is served, and reaches Anthropic as sent', async () => {
    anthropic.reset();
    const messages = searchHistory('weather in Paris 2025', 'Paris forecast, 12 May');
    const response = await post('/v1/messages', { model: MODEL, max_tokens: 50, tools: [webSearch], messages });
    expect(response.status).toBe(200);
    expect((anthropic.inferenceRequests()[0]?.body as { messages: unknown }).messages).toEqual(messages);
  });
});

describe("/v1/responses replayed to OpenAI's own Responses API", () => {
  const question = { type: 'message', role: 'user', content: 'go on' };

  test.each([
    [
      "a web_search_call's query",
      { type: 'web_search_call', id: 'ws_01', status: 'completed', action: { type: 'search', query: `card ${CARD}` } },
      'payment_card',
      'input item 0 (web_search_call)',
    ],
    [
      "an mcp_call's output",
      { type: 'mcp_call', id: 'mcp_01', server_label: 'crm', name: 'lookup', arguments: '{"customer":"Ada"}', output: `iban ${IBAN}` },
      'iban',
      'input item 0 (mcp_call)',
    ],
    [
      "a reasoning item's content (its summary is sent empty)",
      {
        type: 'reasoning',
        id: 'rs_01',
        summary: [],
        content: [{ type: 'reasoning_text', text: `the key is ${OPENAI_LOOKALIKE}` }],
        encrypted_content: 'gAAAABeyJtb2RlbCI6ImdwdC01In0=',
      },
      'openai_api_key',
      'input item 0 (reasoning)',
    ],
  ])('%s is scanned: 400 naming the item, OpenAI never called', async (_name, item, detector, place) => {
    const before = team.openai.inferenceRequests().length;
    const response = await post('/v1/responses', { model: 'gpt-4o-mini', input: [item, question] });
    const body = (await response.json()) as ErrorBody & { error: { param?: string; detector?: string } };
    expect(response.status).toBe(400);
    expect(body.error.code).toBe('sensitive_content_blocked');
    expect(body.error.detector).toBe(detector);
    expect(body.error.message).toContain(place);
    expect(body.error.param).toBe('input[0]');
    expect(body.error.message).not.toContain('4111');
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('a clean hosted-tool item is served', async () => {
    const before = team.openai.inferenceRequests().length;
    const item = { type: 'web_search_call', id: 'ws_02', status: 'completed', action: { type: 'search', query: 'weather in Paris 2025' } };
    const response = await post('/v1/responses', { model: 'gpt-4o-mini', input: [item, question] });
    expect(response.status).toBe(200);
    expect(team.openai.inferenceRequests().length).toBe(before + 1);
  });
});

describe('/v1/embeddings token arrays', () => {
  test('a "token array" holding text is refused as input, never sent: token arrays are numbers, which the scan need not read', async () => {
    const before = team.openai.inferenceRequests().length;
    const response = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: [[`card ${CARD}`]] });
    const body = (await response.json()) as ErrorBody & { error: { param?: string } };
    expect(response.status).toBe(400);
    expect(body.error.param).toBe('input');
    expect(JSON.stringify(body)).not.toContain('4111');
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('real token arrays are served', async () => {
    const response = await post('/v1/embeddings', {
      model: 'text-embedding-3-small',
      input: [
        [9906, 1917],
        [4111, 1111],
      ],
    });
    expect(response.status).toBe(200);
  });
});
