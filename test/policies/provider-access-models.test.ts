// GET /v1/models under a team's provider policy, through the official `openai` client: a member lists
// exactly the models its team may call (the provider-access rule, the very one applied at request
// time), an account admin acting for the team with X-Team-ID lists the same, and keys without a team
// list everything their account's keys report. A real gateway in front of the OpenAI, Anthropic and
// Google simulators, the team made with POST /v1/teams.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { addProviderKeys, call, expectSpecError, OPERATOR_KEY } from '../helpers/gateway.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { OPENAI_KEY, startTeamGateway, type TeamGateway } from './team-fixture.ts';

const ANTHROPIC_KEY = 'sk-ant-api03-ModelsListAnthropicKey0000000000001';
const GOOGLE_KEY = 'AIzaModelsListGoogleKey00000000000000001';

/** The seed team's provider rules: openai with two models, anthropic with one, google off. */
const SEED_PROVIDERS: TeamPermissions = { providers: SEED_TEAM.byok_permissions.providers };

interface ModelsGateway extends TeamGateway {
  anthropic: SimulatorHandle;
  google: SimulatorHandle;
}

/** The team gateway, with Anthropic and Google keys beside OpenAI's and every key's model list fetched. */
function modelsGatewayPerSuite(permissions: TeamPermissions): () => ModelsGateway {
  let setup: ModelsGateway | undefined;
  beforeAll(async () => {
    const anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
    const google = startGoogleSimulator({ apiKeys: [GOOGLE_KEY] });
    const team = await startTeamGateway(permissions, { env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url, KEYWAY_GOOGLE_BASE_URL: google.url } });
    setup = { ...team, anthropic, google };
    await addProviderKeys(
      team.gateway,
      [
        { name: 'anthropic', api_key: ANTHROPIC_KEY },
        { name: 'google', api_key: GOOGLE_KEY },
      ],
      team.adminKey,
    );
    // GET /v1/providers waits for every key's model list, so the listings below are the simulators'.
    const providers = await call(team.gateway, 'GET', '/v1/providers', undefined, { key: team.adminKey });
    if (providers.status !== 200) throw new Error(`listing providers failed: ${providers.status}`);
  });
  afterAll(async () => {
    await setup?.stop();
    await setup?.anthropic.stop();
    await setup?.google.stop();
  });
  return () => {
    if (setup === undefined) throw new Error('the gateway is read before the suite started it');
    return setup;
  };
}

function client(setup: TeamGateway, apiKey: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${setup.gateway.url}/v1`, apiKey, maxRetries: 0, defaultHeaders: headers });
}

async function listed(openai: OpenAI): Promise<Array<{ id: string; owned_by: string }>> {
  const page = await openai.models.list();
  return page.data.map(({ id, owned_by }) => ({ id, owned_by })).sort((left, right) => left.id.localeCompare(right.id));
}

const ids = (models: Array<{ id: string }>): string[] => models.map((model) => model.id);

describe("GET /v1/models: the seed team's provider rules", () => {
  const setup = modelsGatewayPerSuite(SEED_PROVIDERS);

  test('a member key lists exactly the allowed models, none of the disabled provider', async () => {
    const models = await listed(client(setup(), setup().memberKey));
    expect(models).toEqual([
      { id: 'claude-3-sonnet-20240229', owned_by: 'anthropic' },
      { id: 'gpt-3.5-turbo', owned_by: 'openai' },
      { id: 'gpt-4-turbo-preview', owned_by: 'openai' },
    ]);
  });

  test('keys without a team are unchanged: every model every key reports, google included', async () => {
    for (const key of [OPERATOR_KEY, setup().adminKey]) {
      const models = await listed(client(setup(), key));
      const owners = new Set(models.map((model) => model.owned_by));
      expect([...owners].sort()).toEqual(['anthropic', 'google', 'openai']);
      expect(ids(models)).toContain('gemini-pro');
      expect(ids(models)).toContain('gpt-4o');
      expect(ids(models)).toContain('claude-3-opus-20240229');
    }
  });

  test("an account admin acting for the team with X-Team-ID lists the member's models", async () => {
    const member = await listed(client(setup(), setup().memberKey));
    const acting = await listed(client(setup(), setup().adminKey, { 'X-Team-ID': setup().teamId }));
    expect(acting).toEqual(member);
    expect(ids(acting)).toEqual(['claude-3-sonnet-20240229', 'gpt-3.5-turbo', 'gpt-4-turbo-preview']);
  });

  test('an X-Team-ID naming no team of the account is refused as at inference, in the spec shape', async () => {
    const response = await call(setup().gateway, 'GET', '/v1/models', undefined, { key: setup().adminKey, headers: { 'x-team-id': 'team_nope' } });
    const body = await expectSpecError(response, 403, 'permission_denied');
    expect(body.error.type).toBe('permission_error');
  });

  test('listing and calling agree: a member may call every model it lists and no other it could see', async () => {
    const everything = ids(await listed(client(setup(), OPERATOR_KEY)));
    const allowed = new Set(ids(await listed(client(setup(), setup().memberKey))));
    for (const model of everything) {
      const response = await fetch(`${setup().gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${setup().memberKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
      const body = (await response.json()) as { error?: { code: string } };
      const refusedByTeam = body.error?.code === 'model_not_allowed' || body.error?.code === 'provider_not_allowed';
      expect({ model, callable: !refusedByTeam }).toEqual({ model, callable: allowed.has(model) });
      if (allowed.has(model)) expect({ model, status: response.status }).toEqual({ model, status: 200 });
    }
  });

  test('a change to the team is listed at once', async () => {
    const patched = await call(
      setup().gateway,
      'PATCH',
      `/v1/teams/${setup().teamId}`,
      { byok_permissions: { providers: { openai: { models: ['gpt-4o'] }, anthropic: { enabled: false } } } },
      { key: setup().adminKey },
    );
    expect(patched.status).toBe(200);
    await setup().gateway.runtime.services.snapshot.refresh();
    expect(await listed(client(setup(), setup().memberKey))).toEqual([{ id: 'gpt-4o', owned_by: 'openai' }]);
  });
});

describe('GET /v1/models: a glob allowlist', () => {
  const setup = modelsGatewayPerSuite({
    providers: { openai: { enabled: true, models: ['gpt-4*'] }, anthropic: { enabled: true }, google: { enabled: false } },
  });

  test("a member lists the glob's models, every model of a provider listed without a models list, none of a disabled or unlisted one", async () => {
    const models = await listed(client(setup(), setup().memberKey));
    const openai = ids(models.filter((model) => model.owned_by === 'openai'));
    expect(openai).toEqual(['gpt-4', 'gpt-4-turbo-preview', 'gpt-4.1', 'gpt-4o', 'gpt-4o-mini']);
    const everything = await listed(client(setup(), OPERATOR_KEY));
    const anthropic = (list: typeof models) => ids(list.filter((model) => model.owned_by === 'anthropic'));
    expect(anthropic(models)).toEqual(anthropic(everything));
    expect(anthropic(models).length).toBeGreaterThan(0);
    expect(models.some((model) => model.owned_by === 'google')).toBe(false);
    // Every provider the operator sees but the team does not list is left out.
    const unlisted = everything.filter((model) => !['openai', 'anthropic', 'google'].includes(String(model.owned_by)));
    for (const model of unlisted) expect(models.some((entry) => entry.id === model.id)).toBe(false);
  });
});

describe('GET /v1/models: who may list, and one model at a time', () => {
  const setup = modelsGatewayPerSuite(SEED_PROVIDERS);

  async function addMember(body: Record<string, unknown>): Promise<string> {
    const response = await call(setup().gateway, 'POST', `/v1/teams/${setup().teamId}/members`, body, { key: setup().adminKey });
    expect(response.status).toBe(201);
    return String(((await response.json()) as { api_key: string }).api_key);
  }

  test('a viewer and a member without byok_access, who may call no model, list none', async () => {
    const viewer = await addMember({ email: 'viewer@company.com', role: 'viewer' });
    const noByok = await addMember({ email: 'nobyok@company.com', role: 'developer', byok_access: false });
    for (const key of [viewer, noByok]) {
      expect(await listed(client(setup(), key))).toEqual([]);
      const refused = await call(
        setup().gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] },
        { key },
      );
      await expectSpecError(refused, 403, 'byok_access_denied');
    }
  });

  test("the team's allowed_ips bind the listing as every other call of its members", async () => {
    const bound = await call(setup().gateway, 'PATCH', `/v1/teams/${setup().teamId}`, { allowed_ips: ['10.9.0.0/16'] }, { key: setup().adminKey });
    expect(bound.status).toBe(200);
    await setup().gateway.runtime.services.snapshot.refresh();
    try {
      for (const path of ['/v1/models', '/v1/models/gpt-3.5-turbo']) {
        await expectSpecError(await call(setup().gateway, 'GET', path, undefined, { key: setup().memberKey }), 403, 'ip_not_allowed');
      }
    } finally {
      const lifted = await call(setup().gateway, 'PATCH', `/v1/teams/${setup().teamId}`, { allowed_ips: null }, { key: setup().adminKey });
      expect(lifted.status).toBe(200);
      await setup().gateway.runtime.services.snapshot.refresh();
    }
    expect(ids(await listed(client(setup(), setup().memberKey)))).toContain('gpt-3.5-turbo');
  });

  test('an account key bound to another network cannot list, nor learn from the answer whether it is valid', async () => {
    const created = await call(setup().gateway, 'POST', '/v1/keys', { role: 'developer', allowed_ips: ['203.0.113.0/24'] }, { key: setup().adminKey });
    expect(created.status).toBe(201);
    const key = String(((await created.json()) as { api_key: string }).api_key);
    await expectSpecError(await call(setup().gateway, 'GET', '/v1/models', undefined, { key }), 403, 'ip_not_allowed');
  });

  test('models.retrieve answers a listed model, and 404 model_not_found for one the member may not call or that does not exist', async () => {
    const openai = client(setup(), setup().memberKey);
    const model = await openai.models.retrieve('gpt-3.5-turbo');
    expect(model).toMatchObject({ id: 'gpt-3.5-turbo', object: 'model', owned_by: 'openai' });
    const slashed = await call(setup().gateway, 'GET', '/v1/models/gpt-3.5-turbo/', undefined, { key: setup().memberKey });
    expect(((await slashed.json()) as { id: string }).id).toBe('gpt-3.5-turbo');
    for (const id of ['gpt-4o', 'gemini-pro', 'no-such-model']) {
      const response = await call(setup().gateway, 'GET', `/v1/models/${id}`, undefined, { key: setup().memberKey });
      await expectSpecError(response, 404, 'model_not_found');
    }
    const operator = client(setup(), OPERATOR_KEY);
    expect((await operator.models.retrieve('gemini-pro')).owned_by).toBe('google');
    const refused = await openai.models.retrieve('gpt-4o').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test('a provider/model name is retrieved as on the inference routes, escaped or not, within what the member may call', async () => {
    const openai = client(setup(), setup().memberKey);
    const named = await openai.models.retrieve('openai/gpt-3.5-turbo');
    expect(named).toMatchObject({ id: 'openai/gpt-3.5-turbo', object: 'model', owned_by: 'openai', provider: 'openai' });
    for (const path of ['/v1/models/openai/gpt-3.5-turbo', '/v1/models/openai%2Fgpt-3.5-turbo', '/v1/models/openai/gpt-3.5-turbo/']) {
      const response = await call(setup().gateway, 'GET', path, undefined, { key: setup().memberKey });
      expect({ path, status: response.status, id: ((await response.json()) as { id?: string }).id }).toEqual({ path, status: 200, id: 'openai/gpt-3.5-turbo' });
    }
    // Another provider's prefix, a model the team does not allow, a provider the team turned off.
    for (const id of ['anthropic/gpt-3.5-turbo', 'openai/gpt-4o', 'google/gemini-pro']) {
      await expectSpecError(await call(setup().gateway, 'GET', `/v1/models/${id}`, undefined, { key: setup().memberKey }), 404, 'model_not_found');
    }
    expect((await client(setup(), OPERATOR_KEY).models.retrieve('google/gemini-pro')).owned_by).toBe('google');
  });

  test("created is the provider list's own time; 0 where the list gives none", async () => {
    const page = await client(setup(), OPERATOR_KEY).models.list();
    const created = (id: string) => page.data.find((model) => model.id === id)?.created;
    expect(created('gpt-3.5-turbo')).toBe(1677610602);
    expect(created('claude-3-opus-20240229')).toBe(Date.parse('2024-02-29T00:00:00Z') / 1000);
    expect(created('gemini-pro')).toBe(0);
    expect((await client(setup(), OPERATOR_KEY).models.retrieve('gpt-3.5-turbo')).created).toBe(1677610602);
  });

  test('an id with a slash is retrieved as listed, escaped or not', async () => {
    // A Groq key: Groq's catalog ids hold a slash (meta-llama/…). (The entry's top-level `base_url`
    // this test once sent was never a field, and is refused now that unknown fields are.)
    await addProviderKeys(setup().gateway, [{ name: 'groq', api_key: OPENAI_KEY }], setup().adminKey);
    await call(setup().gateway, 'GET', '/v1/providers', undefined, { key: setup().adminKey });
    const everything = await listed(client(setup(), OPERATOR_KEY));
    const slashed = everything.find((model) => model.id.includes('/'));
    expect(slashed).toBeDefined();
    if (slashed === undefined) return;
    const operator = client(setup(), OPERATOR_KEY);
    expect((await operator.models.retrieve(slashed.id)).id).toBe(slashed.id);
    const raw = await call(setup().gateway, 'GET', `/v1/models/${slashed.id}`, undefined, { key: OPERATOR_KEY });
    expect(raw.status).toBe(200);
  });
});

describe('GET /v1/models: a team that allows an alias', () => {
  const setup = modelsGatewayPerSuite({ providers: { anthropic: { enabled: true, models: ['claude-sonnet-4-5'] } } });

  test('lists the alias beside what the key reports (the dated snapshot), and the alias is callable', async () => {
    const everything = ids(await listed(client(setup(), OPERATOR_KEY)));
    expect(everything).toContain('claude-sonnet-4-5-20250929');
    expect(everything).toContain('claude-sonnet-4-5');
    // The alias is as old as its dated snapshot.
    const page = await client(setup(), OPERATOR_KEY).models.list();
    const sonnet = page.data.find((model) => model.id === 'claude-sonnet-4-5');
    expect(sonnet?.created).toBe(Date.parse('2025-09-29T00:00:00Z') / 1000);
    const member = await listed(client(setup(), setup().memberKey));
    expect(ids(member.filter((model) => model.owned_by === 'anthropic'))).toEqual(['claude-sonnet-4-5']);
    expect((await client(setup(), setup().memberKey).models.retrieve('claude-sonnet-4-5')).owned_by).toBe('anthropic');
    const response = await call(
      setup().gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
      { key: setup().memberKey },
    );
    expect(response.status).toBe(200);
  });
});
