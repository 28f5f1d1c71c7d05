// Anthropic server tools (web search, code execution…) on `/v1/messages`: a request with one goes to
// Anthropic's own Messages API as sent and its server tool blocks come back whole; a team's
// `hosted_tools` refuses what it does not allow (403 tool_not_allowed, in Anthropic's shape); a route
// without Anthropic is refused with a 400 naming the tool, and a fallback never lands on another provider.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway } from '../policies/team-fixture.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { rejectionOf } from '../clients/client-fixtures.ts';

const ANTHROPIC_KEY = 'sk-ant-api03-ServerToolsAnthropicKey0000000001';
const MODEL = 'claude-sonnet-4-5-20250929';
const WEB_SEARCH = { type: 'web_search_20250305' as const, name: 'web_search' as const, max_uses: 3 };
const CODE_EXECUTION = { type: 'code_execution_20250825' as const, name: 'code_execution' as const };

let anthropic: SimulatorHandle;
let setup: TeamGateway;
/** A member of a team whose `hosted_tools` allows web search only. */
let searchKey: string;
/** A member of a team whose `hosted_tools` allows nothing. */
let lockedKey: string;

async function teamMember(name: string, hostedTools: Record<string, unknown>): Promise<string> {
  const response = await call(
    setup.gateway,
    'POST',
    '/v1/teams',
    { name, hosted_tools: hostedTools, members: [{ email: `${name}@company.com`, role: 'developer', byok_access: true }] },
    { key: setup.adminKey },
  );
  const body = (await response.json()) as { members: Array<{ api_key: string }> };
  if (response.status !== 201 || body.members[0] === undefined) throw new Error(`creating the team failed: ${response.status}`);
  return body.members[0].api_key;
}

function client(apiKey: string): Anthropic {
  return new Anthropic({ baseURL: setup.gateway.url, apiKey, maxRetries: 0 });
}

beforeAll(async () => {
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  setup = await startTeamGateway({}, { env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url } });
  await addProviderKeys(setup.gateway, [{ name: 'anthropic', api_key: ANTHROPIC_KEY }], setup.adminKey);
  searchKey = await teamMember('search', { web_search: true, code_execution: false });
  lockedKey = await teamMember('locked', {});
});

afterAll(async () => {
  await setup.stop();
  await anthropic.stop();
});

beforeEach(() => {
  anthropic.reset();
  setup.openai.reset();
});

const question = [{ role: 'user' as const, content: 'News about Paris?' }];

describe('a team that allows web search', () => {
  test("the tool reaches Anthropic as sent, and its blocks come back whole, with the search's fee booked", async () => {
    const { data: message, response } = await client(searchKey)
      .messages.create({ model: MODEL, max_tokens: 300, tools: [WEB_SEARCH], messages: question })
      .withResponse();
    expect(message.content.map((block) => block.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'text']);
    expect(message.usage.server_tool_use?.web_search_requests).toBe(1);
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    expect(Number(response.headers.get('x-keyway-cost'))).toBeGreaterThanOrEqual(0.01);
    const sent = anthropic.inferenceRequests()[0]?.body as { tools?: unknown; model?: string };
    expect(sent.tools).toEqual([WEB_SEARCH]);
    expect(sent.model).toBe(MODEL);
  });

  test('streamed: the events pass as Anthropic sent them, and the SDK assembles the same message', async () => {
    const final = await client(searchKey)
      .messages.stream({ model: MODEL, max_tokens: 300, tools: [WEB_SEARCH], messages: question })
      .finalMessage();
    expect(final.content.map((block) => block.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'text']);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.server_tool_use?.web_search_requests).toBe(1);
  });

  test('a tool the team does not allow is 403 tool_not_allowed in Anthropic shape, before any upstream call', async () => {
    const refused = await call(
      setup.gateway,
      'POST',
      '/v1/messages',
      { model: MODEL, max_tokens: 300, tools: [WEB_SEARCH, CODE_EXECUTION], messages: question },
      { key: searchKey },
    );
    expect(refused.status).toBe(403);
    const body = (await refused.json()) as { type: string; error: { type: string; code: string } };
    expect(body).toMatchObject({ type: 'error', error: { type: 'permission_error', code: 'tool_not_allowed' } });
    expect(anthropic.inferenceRequests()).toEqual([]);
  });
});

describe('a team that allows no hosted tool', () => {
  test('web search is refused through the SDK as a PermissionDeniedError, and nothing reaches Anthropic', async () => {
    const refused = await rejectionOf(client(lockedKey).messages.create({ model: MODEL, max_tokens: 300, tools: [WEB_SEARCH], messages: question }));
    expect(refused).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect((refused as InstanceType<typeof Anthropic.PermissionDeniedError>).message).toContain('web search');
    expect(anthropic.inferenceRequests()).toEqual([]);
  });
});

describe('routes without Anthropic', () => {
  test('a model another provider serves is refused with a 400 naming the tool, before any upstream call', async () => {
    const refused = await call(setup.gateway, 'POST', '/v1/messages', { model: 'gpt-4o', max_tokens: 100, tools: [WEB_SEARCH], messages: question });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_feature' });
    expect(body.error.message).toContain("tools[0]: tool type 'web_search_20250305'");
    expect(setup.openai.inferenceRequests()).toEqual([]);
  });

  test('a fallback chain never hands the request to a provider that cannot run the tool', async () => {
    anthropic.inject({ kind: 'server_error' });
    // A class member, so the chain has an OpenAI equivalent to fall back to (the next test uses it).
    const failed = await call(setup.gateway, 'POST', '/v1/messages', {
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      tools: [WEB_SEARCH],
      messages: question,
      routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] },
    });
    expect(failed.status).toBe(502);
    expect(setup.openai.inferenceRequests()).toEqual([]);
  });

  test('a request without such a tool still falls back as before', async () => {
    anthropic.inject({ kind: 'server_error' });
    const served = await call(setup.gateway, 'POST', '/v1/messages', {
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      messages: question,
      routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] },
    });
    expect(served.status).toBe(200);
    expect(served.headers.get('x-provider-used')).toBe('openai');
  });
});

describe('budgets and approvals', () => {
  test("a web search tool's max_uses is in the worst case: searches it allows can need an approval", async () => {
    const response = await call(
      setup.gateway,
      'POST',
      '/v1/teams',
      {
        name: 'approved-searches',
        hosted_tools: { web_search: true },
        byok_permissions: { providers: { anthropic: { require_approval_above: 0.02 } } },
        members: [{ email: 'approved@company.com', role: 'developer', byok_access: true }],
      },
      { key: setup.adminKey },
    );
    const key = ((await response.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
    // Three searches at $0.01 each are above $0.02 whatever the tokens; a few tokens alone are not.
    const searching = await call(setup.gateway, 'POST', '/v1/messages', { model: MODEL, max_tokens: 10, tools: [WEB_SEARCH], messages: question }, { key });
    expect(searching.status).toBe(403);
    expect(((await searching.json()) as { error: { type: string; message: string } }).error.message).toContain('approval');
    const plain = await call(setup.gateway, 'POST', '/v1/messages', { model: MODEL, max_tokens: 10, messages: question }, { key });
    expect(plain.status).toBe(200);
    await plain.text();
    // One allowed search fits: the bound is the tool's own.
    const once = await call(
      setup.gateway,
      'POST',
      '/v1/messages',
      { model: MODEL, max_tokens: 10, tools: [{ ...WEB_SEARCH, max_uses: 1 }], messages: question },
      { key },
    );
    expect(once.status).toBe(200);
    await once.text();
    expect(anthropic.inferenceRequests()).toHaveLength(2);
  });
});

describe("Anthropic's MCP connector and containers", () => {
  const MCP = [{ type: 'url', url: 'https://mcp.example.com/sse', name: 'example' }];

  test('mcp_servers goes to Anthropic as sent, and a route without Anthropic refuses it instead of dropping it', async () => {
    const served = await call(
      setup.gateway,
      'POST',
      '/v1/messages',
      { model: MODEL, max_tokens: 50, mcp_servers: MCP, messages: question },
      { key: setup.adminKey },
    );
    expect(served.status).toBe(200);
    await served.text();
    expect((anthropic.inferenceRequests()[0]?.body as { mcp_servers?: unknown }).mcp_servers).toEqual(MCP);
    for (const body of [
      { model: 'gpt-4o-mini', max_tokens: 50, mcp_servers: MCP, messages: question },
      { model: 'gpt-4o-mini', max_tokens: 50, container: 'container_1', messages: question },
    ]) {
      const refused = await call(setup.gateway, 'POST', '/v1/messages', body, { key: setup.adminKey });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('exists only on Anthropic');
    }
    expect(setup.openai.inferenceRequests()).toHaveLength(0);
  });
});
