// The team policies over HTTP: a real gateway in front of the OpenAI and Anthropic simulators, the
// seed's team created with POST /v1/teams, its developer member calling models. Every refusal answers
// its code, reaches no upstream and is booked.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, call, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';

const OPENAI_SHARED = 'sk-proj-PoliciesSharedOpenAIKey00000000000001';
const OPENAI_PRODUCTION = 'sk-proj-PoliciesProductionOpenAIKey0000000002';
const ANTHROPIC_KEY = 'sk-ant-api03-PoliciesAnthropicKey000000000000003';

const LOCKED_TEAM = {
  name: 'Locked Team',
  byok_permissions: { providers: { openai: { enabled: true, models: ['gpt-4o*'] } } },
  allowed_ips: ['203.0.113.0/24'],
  hosted_tools: { web_search: false, code_execution: false, mcp_servers: ['https://mcp.example.com/*'] },
  members: [{ email: 'dev@locked.example', role: 'developer', byok_access: true }],
};

const MCP_TEAM = {
  name: 'MCP Team',
  hosted_tools: { web_search: false, mcp_servers: ['https://*.mycorp.com/*'] },
  members: [{ email: 'dev@mcp.example', role: 'developer' }],
};

/** Anthropic limited to Sonnet and Google off, OpenAI unlisted (every model): cost_optimized has allowed substitutes. */
const SONNET_TEAM = {
  name: 'Sonnet Team',
  byok_permissions: { providers: { anthropic: { enabled: true, models: ['claude-3-sonnet-20240229'] }, google: { enabled: false } } },
  members: [{ email: 'dev@sonnet.example', role: 'developer' }],
};

/** No policy of its own: what its members may do is up to their keys' settings. */
const OPEN_TEAM = {
  name: 'Open Team',
  members: [{ email: 'office@open.example', role: 'developer', allowed_ips: ['198.51.100.0/24'] }],
};

let gateway: TestGateway;
let openai: SimulatorHandle;
let anthropic: SimulatorHandle;
let adminKey: string;
let seedTeamId: string;
let developerKey: string;
let lockedDeveloperKey: string;
let mcpDeveloperKey: string;
let openTeamId: string;
let sonnetDeveloperKey: string;
let officeMember: { id: string; api_key: string; allowed_ips?: string[] };
let productionKeyId: string;
let sharedKeyId: string;

interface Created {
  id: string;
  members: Array<{ id: string; email: string; api_key?: string; allowed_ips?: string[] }>;
}

async function createTeam(body: unknown): Promise<Created> {
  const response = await call(gateway, 'POST', '/v1/teams', body, { key: adminKey });
  const created = (await response.json()) as Created;
  if (response.status !== 201) throw new Error(`creating a team failed: ${response.status} ${JSON.stringify(created)}`);
  return created;
}

async function createKey(body: Record<string, unknown>): Promise<string> {
  const response = await call(gateway, 'POST', '/v1/keys', { role: 'developer', ...body }, { key: adminKey });
  const created = (await response.json()) as { api_key?: string; key?: string };
  if (response.status !== 201) throw new Error(`creating a key failed: ${response.status} ${JSON.stringify(created)}`);
  return created.api_key ?? created.key ?? '';
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_SHARED, OPENAI_PRODUCTION] });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_ANTHROPIC_BASE_URL: anthropic.url, KEYWAY_TRUSTED_PROXIES: '127.0.0.1,::1' },
    probes: false,
  });
  adminKey = gateway.defaultAdminKey;
  const added = await addProviderKeys(
    gateway,
    [
      { name: 'openai', api_key: OPENAI_SHARED },
      { name: 'openai', api_key: OPENAI_PRODUCTION, environment: 'production' },
      { name: 'anthropic', api_key: ANTHROPIC_KEY },
    ],
    adminKey,
  );
  sharedKeyId = String(added[0]?.key_id);
  productionKeyId = String(added[1]?.key_id);
  await call(gateway, 'GET', '/v1/providers', undefined, { key: adminKey });
  const seed = await createTeam(SEED_TEAM);
  seedTeamId = seed.id;
  developerKey = seed.members.find((member) => member.email === 'developer@company.com')?.api_key ?? '';
  const locked = await createTeam(LOCKED_TEAM);
  lockedDeveloperKey = locked.members[0]?.api_key ?? '';
  mcpDeveloperKey = (await createTeam(MCP_TEAM)).members[0]?.api_key ?? '';
  sonnetDeveloperKey = (await createTeam(SONNET_TEAM)).members[0]?.api_key ?? '';
  const open = await createTeam(OPEN_TEAM);
  openTeamId = open.id;
  officeMember = { ...(open.members[0] as Created['members'][number]), api_key: open.members[0]?.api_key ?? '' };
});

afterAll(async () => {
  await gateway?.stop();
  await openai?.stop();
  await anthropic?.stop();
});

interface Sent {
  response: Response;
  body: { error?: { code: string; message: string; type: string } } & Record<string, unknown>;
  upstreamCalls: number;
  row: UsageRecord | undefined;
}

async function send(key: string, model: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Promise<Sent> {
  const before = openai.inferenceRequests().length + anthropic.inferenceRequests().length;
  const response = await call(
    gateway,
    'POST',
    '/v1/chat/completions',
    { model, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 16, ...extra },
    { key, headers },
  );
  const body = (await response.json()) as Sent['body'];
  const upstreamCalls = openai.inferenceRequests().length + anthropic.inferenceRequests().length - before;
  await flushUsage(gateway);
  const rows = await gateway.runtime.store.listUsage('default');
  return { response, body, upstreamCalls, row: rows.find((row) => row.requestId === response.headers.get('x-request-id')) };
}

/** A `/v1/responses` request with these tools, as the member's client would send it. */
async function sendResponses(key: string, tools: unknown[]): Promise<Sent> {
  const before = openai.inferenceRequests().length;
  const response = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'Hello!', tools }, { key });
  const body = (await response.json()) as Sent['body'];
  const upstreamCalls = openai.inferenceRequests().length - before;
  await flushUsage(gateway);
  const rows = await gateway.runtime.store.listUsage('default');
  return { response, body, upstreamCalls, row: rows.find((row) => row.requestId === response.headers.get('x-request-id')) };
}

function mcpTool(serverUrl: string): Record<string, unknown> {
  return { type: 'mcp', server_label: 'tools', server_url: serverUrl, require_approval: 'never' };
}

function expectRefused(sent: Sent, code: string): void {
  expect(sent.response.status).toBe(403);
  expect(sent.body.error).toMatchObject({ code, type: 'permission_error' });
  expect(sent.upstreamCalls).toBe(0);
  expect(sent.row).toMatchObject({ status: 403, errorCode: code });
}

const TAG = { 'x-project-tag': 'project-a' };

describe('a model the team refuses, under every strategy', () => {
  test('no allowed substitute of another provider answers it: cost_optimized and fallback_chain refuse as byok_preferred does', async () => {
    for (const routing of [
      { strategy: 'byok_preferred' },
      { strategy: 'cost_optimized' },
      { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] },
    ]) {
      const opus = await send(sonnetDeveloperKey, 'claude-3-opus-20240229', {}, { routing });
      expect({ routing, code: opus.body.error?.code, upstreamCalls: opus.upstreamCalls }).toEqual({ routing, code: 'model_not_allowed', upstreamCalls: 0 });
      const gemini = await send(sonnetDeveloperKey, 'gemini-1.5-pro', {}, { routing });
      expect({ routing, code: gemini.body.error?.code, upstreamCalls: gemini.upstreamCalls }).toEqual({
        routing,
        code: 'provider_not_allowed',
        upstreamCalls: 0,
      });
    }
  });

  test('an allowed model is still served, and its substitutes filtered by the same rule', async () => {
    for (const routing of [{ strategy: 'cost_optimized' }, { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] }]) {
      const served = await send(sonnetDeveloperKey, 'claude-3-sonnet-20240229', {}, { routing });
      expect({ routing, status: served.response.status }).toEqual({ routing, status: 200 });
    }
  });
});

describe("the seed's team", () => {
  test('an allowed model with an allowed project tag is served and booked with its tag and team', async () => {
    const sent = await send(developerKey, 'gpt-4-turbo-preview', TAG);
    expect(sent.response.status).toBe(200);
    expect(sent.upstreamCalls).toBe(1);
    expect(sent.row).toMatchObject({ status: 200, projectTag: 'project-a', teamId: seedTeamId });
  });

  test('anthropic: the listed Sonnet is served, Opus is 403 model_not_allowed', async () => {
    const served = await send(developerKey, 'claude-3-sonnet-20240229', TAG);
    expect(served.response.status).toBe(200);
    const refused = await send(developerKey, 'claude-3-opus-20240229', TAG);
    expectRefused(refused, 'model_not_allowed');
    expect(refused.body.error?.message).toContain('claude-3-opus-20240229');
  });

  test('a model the team does not list: 403 model_not_allowed naming it', async () => {
    const sent = await send(developerKey, 'gpt-4o', TAG);
    expectRefused(sent, 'model_not_allowed');
    expect(sent.body.error?.message).toContain("'gpt-4o'");
  });

  test('google is turned off: 403 provider_not_allowed', async () => {
    expectRefused(await send(developerKey, 'gemini-1.5-pro', TAG), 'provider_not_allowed');
    expectRefused(await send(developerKey, 'google/gemini-1.5-pro', TAG), 'provider_not_allowed');
  });

  test('no project tag: 403 project_tag_required; a tag not listed: 403 project_not_allowed', async () => {
    expectRefused(await send(developerKey, 'gpt-3.5-turbo'), 'project_tag_required');
    expectRefused(await send(developerKey, 'gpt-3.5-turbo', { 'x-project-tag': 'project-z' }), 'project_not_allowed');
  });

  test('a tag refused as invalid is not booked (nor exported); a valid tag on a request refused for another reason is', async () => {
    // `é` as the header's Latin-1 byte, and as UTF-8 read as Latin-1 (what a client sending UTF-8 arrives as).
    const invalid = await Promise.all(['\u00e9=1+2', '\u00c3\u00a9=1+2', `${'p'.repeat(65)}`].map((tag) => send(adminKey, 'gpt-4o', { 'x-project-tag': tag })));
    for (const sent of invalid) {
      expect(sent.response.status).toBe(400);
      expect(sent.body.error).toMatchObject({ code: 'invalid_field', param: 'x-project-tag' });
      expect(sent.row).toMatchObject({ status: 400, projectTag: null });
    }
    const refused = await send(developerKey, 'gpt-4o', TAG);
    expectRefused(refused, 'model_not_allowed');
    expect(refused.row?.projectTag).toBe('project-a');

    const exported = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'all_usage', start: '2000-01-01', end: '2100-01-01', format: 'json' },
      { key: adminKey },
    );
    const rows = ((await exported.json()) as { data: Array<{ request_id: string; project_tag: string | null }> }).data;
    const tagOf = (sent: Sent) => rows.find((row) => row.request_id === sent.response.headers.get('x-request-id'))?.project_tag;
    for (const sent of invalid) expect(tagOf(sent)).toBeNull();
    expect(tagOf(refused)).toBe('project-a');
  });

  test('an account admin acting for the team with X-Team-ID gets the same rules', async () => {
    expectRefused(await send(adminKey, 'gpt-4o', { ...TAG, 'x-team-id': seedTeamId }), 'model_not_allowed');
    const served = await send(adminKey, 'gpt-3.5-turbo', { ...TAG, 'x-team-id': seedTeamId });
    expect(served.response.status).toBe(200);
  });

  test('the admin without a team is not governed by the team', async () => {
    expect((await send(adminKey, 'gpt-4o')).response.status).toBe(200);
  });
});

describe('IP restrictions', () => {
  test("the team's allowed_ips: a direct call from 127.0.0.1 is 403 ip_not_allowed", async () => {
    expectRefused(await send(lockedDeveloperKey, 'gpt-4o'), 'ip_not_allowed');
  });

  test('behind a trusted proxy, the right-most untrusted X-Forwarded-For address is the client', async () => {
    expect((await send(lockedDeveloperKey, 'gpt-4o', { 'x-forwarded-for': '203.0.113.50' })).response.status).toBe(200);
    // A spoofed left-most entry is not believed.
    expectRefused(await send(lockedDeveloperKey, 'gpt-4o', { 'x-forwarded-for': '203.0.113.50, 198.51.100.1' }), 'ip_not_allowed');
  });

  test("a key's own allowed_ips", async () => {
    const key = await createKey({ allowed_ips: ['198.51.100.0/24', '2001:db8::/32'] });
    expectRefused(await send(key, 'gpt-4o'), 'ip_not_allowed');
    expect((await send(key, 'gpt-4o', { 'x-forwarded-for': '2001:db8::9' })).response.status).toBe(200);
  });
});

describe('hosted tools', () => {
  const HEADERS = { 'x-forwarded-for': '203.0.113.50' };

  test('web search the team does not allow: 403 tool_not_allowed', async () => {
    expectRefused(await send(lockedDeveloperKey, 'gpt-4o', HEADERS, { tools: [{ type: 'web_search_preview' }] }), 'tool_not_allowed');
  });

  test('a remote MCP server the team does not list: 403 tool_not_allowed', async () => {
    expectRefused(
      await send(lockedDeveloperKey, 'gpt-4o', HEADERS, { tools: [{ type: 'mcp', server_label: 'x', server_url: 'https://evil.example/mcp' }] }),
      'tool_not_allowed',
    );
  });

  test('Chat Completions web search (web_search_options) is refused as a web_search tool is, and reaches no upstream', async () => {
    const asTool = await send(lockedDeveloperKey, 'gpt-4o', HEADERS, { tools: [{ type: 'web_search' }] });
    const asOptions = await send(lockedDeveloperKey, 'gpt-4o', HEADERS, { web_search_options: { search_context_size: 'high' } });
    expectRefused(asTool, 'tool_not_allowed');
    expectRefused(asOptions, 'tool_not_allowed');
    expect(asOptions.body.error).toMatchObject({ type: asTool.body.error?.type, param: 'web_search_options' });
    expect(asOptions.body.error?.message).toContain("This team may not use the provider's web search");
    expectRefused(await send(lockedDeveloperKey, 'gpt-4o-search-preview', HEADERS, { web_search_options: {} }), 'tool_not_allowed');
  });

  test('function tools are not hosted tools', async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
    expect((await send(lockedDeveloperKey, 'gpt-4o', HEADERS, { tools })).response.status).toBe(200);
  });
});

describe('environments', () => {
  test('a staging gateway key never uses the production provider key; a production key may', async () => {
    const staging = await createKey({ environment: 'staging' });
    const production = await createKey({ environment: 'production' });
    const stagingKeys = new Set<string>();
    const productionKeys = new Set<string>();
    for (let index = 0; index < 12; index += 1) {
      const fromStaging = await send(staging, 'gpt-4o-mini', { 'x-session-id': `s${index}` });
      expect(fromStaging.response.status).toBe(200);
      stagingKeys.add(String(fromStaging.row?.providerKeyId));
      const fromProduction = await send(production, 'gpt-4o-mini', { 'x-session-id': `s${index}` });
      expect(fromProduction.response.status).toBe(200);
      productionKeys.add(String(fromProduction.row?.providerKeyId));
    }
    expect([...stagingKeys]).toEqual([sharedKeyId]);
    expect([...productionKeys].every((id) => id === sharedKeyId || id === productionKeyId)).toBe(true);
  });
});

describe('MCP server wildcards match the host, not the URL text', () => {
  test('an allowed host under the wildcard is served, and the provider gets the URL as sent', async () => {
    const sent = await sendResponses(mcpDeveloperKey, [mcpTool('https://tools.mycorp.com/mcp')]);
    expect(sent.response.status).toBe(200);
    expect(sent.upstreamCalls).toBe(1);
    expect(JSON.stringify(openai.inferenceRequests().at(-1)?.body)).toContain('https://tools.mycorp.com/mcp');
  });

  test.each([
    ['the allowed suffix in the path', 'https://evil.com/.mycorp.com/'],
    ['the allowed host as user info', 'https://tools.mycorp.com@evil.com/mcp'],
    ['user info before an allowed host', 'https://attacker:secret@tools.mycorp.com/mcp'],
    ['the suffix after a query mark', 'https://evil.com?.mycorp.com/'],
    ['the suffix after a fragment mark', 'https://evil.com#.mycorp.com/'],
    ['a backslash before user info', 'https://tools.mycorp.com\\@evil.com/'],
    ['an uppercase foreign host', 'https://EVIL.COM/.mycorp.com/'],
    ['a trailing dot', 'https://evil.com./.mycorp.com/'],
    ['the allowed domain as a prefix of another', 'https://tools.mycorp.com.evil.com/mcp'],
    ['another port', 'https://tools.mycorp.com:8443/mcp'],
    ['plain http', 'http://tools.mycorp.com/mcp'],
    ['no URL at all', 'tools.mycorp.com'],
  ])('%s: 403 tool_not_allowed, nothing reaches the provider', async (_label, serverUrl) => {
    const sent = await sendResponses(mcpDeveloperKey, [mcpTool(serverUrl)]);
    expectRefused(sent, 'tool_not_allowed');
    expect(sent.body.error?.message).not.toContain('secret');
  });
});

describe('member keys carry allowed_ips and environment', () => {
  test("a member's allowed_ips, given at team creation: refused from elsewhere, served from inside, shown on the member", async () => {
    expect(officeMember.allowed_ips).toEqual(['198.51.100.0/24']);
    const outside = await send(officeMember.api_key, 'gpt-4o');
    expectRefused(outside, 'ip_not_allowed');
    expect(outside.body.error?.message).toContain('127.0.0.1');
    expect((await send(officeMember.api_key, 'gpt-4o', { 'x-forwarded-for': '198.51.100.7' })).response.status).toBe(200);
    const team = (await (await call(gateway, 'GET', `/v1/teams/${openTeamId}`, undefined, { key: adminKey })).json()) as Created;
    expect(team.members.find((member) => member.id === officeMember.id)?.allowed_ips).toEqual(['198.51.100.0/24']);
  });

  test('a re-issued member key keeps its allowed_ips', async () => {
    const response = await call(gateway, 'POST', `/v1/teams/${openTeamId}/members/${officeMember.id}/keys`, undefined, { key: adminKey });
    expect(response.status).toBe(201);
    const reissued = (await response.json()) as { api_key: string; allowed_ips?: string[] };
    expect(reissued.allowed_ips).toEqual(['198.51.100.0/24']);
    expectRefused(await send(reissued.api_key, 'gpt-4o'), 'ip_not_allowed');
    expect((await send(reissued.api_key, 'gpt-4o', { 'x-forwarded-for': '198.51.100.8' })).response.status).toBe(200);
  });

  test('POST /v1/teams/{id}/members with allowed_ips and environment; a staging member never uses the production provider key', async () => {
    const response = await call(
      gateway,
      'POST',
      `/v1/teams/${openTeamId}/members`,
      { email: 'staging@open.example', role: 'developer', environment: 'staging', allowed_ips: ['127.0.0.1', '::1'] },
      { key: adminKey },
    );
    expect(response.status).toBe(201);
    const member = (await response.json()) as { api_key: string; environment?: string; allowed_ips?: string[] };
    expect(member).toMatchObject({ environment: 'staging', allowed_ips: ['127.0.0.1', '::1'] });
    const used = new Set<string>();
    for (let index = 0; index < 12; index += 1) {
      const sent = await send(member.api_key, 'gpt-4o-mini', { 'x-session-id': `m${index}` });
      expect(sent.response.status).toBe(200);
      used.add(String(sent.row?.providerKeyId));
    }
    expect([...used]).toEqual([sharedKeyId]);
  });

  test('member allowed_ips and environment are checked as on POST /v1/keys, and a refused member is not added', async () => {
    const refusal = async (path: string, body: Record<string, unknown>) => {
      const response = await call(gateway, 'POST', path, body, { key: adminKey });
      const { error } = (await response.json()) as { error: { code: string; param: string; message: string } };
      return { status: response.status, code: error.code, param: error.param, message: error.message };
    };
    for (const field of [{ environment: 'Prod uction' }, { allowed_ips: '10.0.0.0/8' }, { allowed_ips: [''] }, { allowed_ips: Array(257).fill('10.0.0.1') }]) {
      const asMember = await refusal(`/v1/teams/${openTeamId}/members`, { email: 'refused@open.example', role: 'developer', ...field });
      expect(asMember.status).toBe(400);
      expect(asMember).toEqual(await refusal('/v1/keys', { role: 'developer', ...field }));
    }
    const team = (await (await call(gateway, 'GET', `/v1/teams/${openTeamId}`, undefined, { key: adminKey })).json()) as Created;
    expect(team.members.map((member) => member.email)).not.toContain('refused@open.example');
  });
});
