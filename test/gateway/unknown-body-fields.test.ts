// Management bodies refuse fields they do not know, as POST /v1/teams and /v1/alerts always did
// (QA12 seed D5): a typo such as `health_treshold` used to be stored beside the real threshold, which
// stayed at 95; `organisation_id`, `setings` or a misspelt key setting were dropped or stored unread.
// The seed's own bodies, as printed, are accepted unchanged.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

/** Nothing listens there: the background model checks of the other providers' keys fail at once, offline. */
const NOWHERE = 'http://127.0.0.1:9';
const SHARED_SETTINGS_KEY = 'sk-proj-SHAREDxSETTINGS0000000002';

let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: ['sk-your-openai-api-key', SHARED_SETTINGS_KEY] });
  gateway = await startTestGateway({
    probes: false,
    logLevel: 'info',
    env: {
      ...Object.fromEntries(['ANTHROPIC', 'GOOGLE', 'COHERE', 'PERPLEXITY'].map((name) => [`KEYWAY_${name}_BASE_URL`, NOWHERE])),
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
    },
  });
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

const admin = () => ({ key: gateway.defaultAdminKey });

/** The seed's "Configure Provider Keys" body, as printed (Python's True as JSON). */
const SEED_PROVIDER_KEYS = {
  providers: [
    {
      name: 'openai',
      api_key: 'sk-your-openai-api-key',
      organization_id: 'org-your-org-id',
      settings: { default_model: 'gpt-4-turbo-preview', max_tokens_default: 4000, temperature_default: 0.7 },
    },
    { name: 'anthropic', api_key: 'sk-ant-your-anthropic-key', settings: { default_model: 'claude-3-opus-20240229', max_tokens_default: 4000 } },
    { name: 'google', api_key: 'your-google-api-key', settings: { default_model: 'gemini-pro', safety_settings: 'medium' } },
    { name: 'cohere', api_key: 'your-cohere-api-key' },
    { name: 'perplexity', api_key: 'pplx-your-perplexity-key' },
  ],
  encryption: { method: 'AES-256-GCM', key_rotation: true, rotation_days: 90 },
};
const SEED_HEALTH_CHECK = { auto_disable: true, health_threshold: 95, latency_threshold: 1000, check_interval: 60 };
const SEED_ROUTING = { routing: { strategy: 'cost_optimized', prefer_byok: true, cost_weights: { openai: 0.8, anthropic: 1.0 } } };

async function refused(response: Response, param: string): Promise<string> {
  const body = await expectSpecError(response, 400, 'invalid_field');
  expect(body.error.param).toBe(param);
  return body.error.message;
}

describe("the seed's bodies, as printed", () => {
  test('provider keys with their settings, organization and encryption block are stored', async () => {
    const response = await call(gateway, 'POST', '/v1/providers/keys', SEED_PROVIDER_KEYS, admin());
    expect(response.status).toBe(201);
    const body = (await response.json()) as { providers: Array<{ name: string; settings: Record<string, unknown> }>; encryption: Record<string, unknown> };
    expect(body.providers.map((key) => key.name)).toEqual(['openai', 'anthropic', 'google', 'cohere', 'perplexity']);
    expect(body.providers[2]?.settings).toEqual({ default_model: 'gemini-pro', safety_settings: 'medium' });
    expect(body.encryption).toMatchObject({ method: 'AES-256-GCM', key_rotation: true, rotation_days: 90 });
  });

  test('the health-check policy and the cost-optimized routing block are stored', async () => {
    const health = await call(gateway, 'POST', '/v1/providers/health-check', SEED_HEALTH_CHECK, admin());
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject(SEED_HEALTH_CHECK);
    const routing = await call(gateway, 'PUT', '/v1/settings/routing', SEED_ROUTING, admin());
    expect(routing.status).toBe(200);
    expect(await routing.json()).toEqual(SEED_ROUTING);
  });
});

describe('unknown fields are refused, naming them', () => {
  test('POST /v1/providers/health-check: a misspelt threshold is not stored beside the real one', async () => {
    const message = await refused(
      await call(gateway, 'POST', '/v1/providers/health-check', { auto_disable: true, health_treshold: 50 }, admin()),
      'health_treshold',
    );
    expect(message).toContain('known fields: auto_disable, health_threshold');
    const policy = (await (await call(gateway, 'GET', '/v1/providers/health', undefined, admin())).json()) as { policy: Record<string, unknown> };
    expect(policy.policy).not.toHaveProperty('health_treshold');
    expect(policy.policy.health_threshold).toBe(95);
  });

  test('PUT /v1/settings/routing: in the routing block and beside it, and nothing is stored', async () => {
    const inside = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'byok_preferred', bogus: 1 } }, admin());
    expect(await refused(inside, 'routing.bogus')).toContain('known fields: strategy, use_byok_only, fallback_to_parrotrouter');
    await refused(await call(gateway, 'PUT', '/v1/settings/routing', { strategy: 'direct', fallback_reason: ['timeout'] }, admin()), 'routing.fallback_reason');
    await refused(await call(gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'direct' }, prefer_byok: true }, admin()), 'prefer_byok');
    const settings = (await (await call(gateway, 'GET', '/v1/settings', undefined, admin())).json()) as { settings: { routing: unknown } };
    expect(settings.settings.routing).toEqual(SEED_ROUTING.routing);
  });

  test("a request's own routing refuses them too, before any upstream call", async () => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], routing: { strategy: 'direct', use_byok_onyl: true } };
    await refused(await call(gateway, 'POST', '/v1/chat/completions', body, admin()), 'routing.use_byok_onyl');
  });

  test('every inbound API holds its routing to the same rules, before any upstream call', async () => {
    const routing = { strategy: 'direct', use_byok_onyl: true };
    const requests: Array<[string, Record<string, unknown>]> = [
      ['/v1/messages', { model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }], routing }],
      ['/v1/responses', { model: 'gpt-4o', input: 'Hi', routing }],
      ['/v1/embeddings', { model: 'text-embedding-3-small', input: 'Hi', routing }],
      ['/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], routing: { fallback_reasons: ['rate_limits'] } }],
    ];
    simulator.reset();
    for (const [path, body] of requests) {
      const response = await call(gateway, 'POST', path, body, admin());
      const text = await response.text();
      expect({ path, status: response.status, named: /routing\.(use_byok_onyl|fallback_reasons)/.test(text) }).toEqual({ path, status: 400, named: true });
    }
    expect(simulator.inferenceRequests()).toHaveLength(0);
    // null is no routing, as /v1/messages and /v1/responses have always read it.
    const plain = await call(
      gateway,
      'POST',
      '/v1/messages',
      { model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }], routing: null },
      admin(),
    );
    expect(plain.status).toBe(200);
    await plain.text();
    // Chat reads it so too.
    const chat = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], routing: null }, admin());
    expect(chat.status).toBe(200);
    await chat.text();
  });

  test('POST /v1/providers/keys: an entry, its settings and the encryption block', async () => {
    const entry = { name: 'openai', api_key: 'sk-proj-UNKNOWNxFIELDSxKEY0000000000000001' };
    const post = (body: unknown) => call(gateway, 'POST', '/v1/providers/keys', body, admin());
    await refused(await post({ providers: [{ ...entry, organisation_id: 'org-x' }] }), 'providers[0].organisation_id');
    await refused(await post({ providers: [{ ...entry, setings: { default_model: 'gpt-4o' } }] }), 'providers[0].setings');
    await refused(await post({ providers: [entry], encryption: { method: 'AES-256-GCM', key_rotaton: true } }), 'encryption.key_rotaton');
    await refused(await post({ providers: [entry], encrypton: {} }), 'encrypton');
    const setting = await refused(await post({ providers: [{ ...entry, settings: { max_tokens_defualt: 10 } }] }), 'providers[0].settings.max_tokens_defualt');
    expect(setting).toContain('is not a setting of openai keys; known settings: default_model, max_tokens_default');
    // A provider's own settings are known for its keys only.
    await refused(await post({ providers: [{ ...entry, settings: { safety_settings: 'high' } }] }), 'providers[0].settings.safety_settings');
    // None of it stored a key.
    const listed = (await (await call(gateway, 'GET', '/v1/providers', undefined, admin())).json()) as { providers: Array<{ masked_key: string }> };
    expect(listed.providers.filter((key) => key.masked_key.endsWith('0001'))).toEqual([]);
  });

  test('the settings every key takes are still accepted, with a GET answer sent back (environment in the settings)', async () => {
    // (base_url too, checked by the address policy elsewhere: this test stays offline.)
    const settings = { first_byte_timeout_ms: 15000, connect_timeout_ms: 2000, environment: 'production' };
    const response = await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: SHARED_SETTINGS_KEY, settings }] }, admin());
    expect(response.status).toBe(201);
    expect(((await response.json()) as { providers: Array<{ settings: unknown }> }).providers[0]?.settings).toEqual(settings);
  });

  test('POST /v1/keys, /v1/accounts, PUT /v1/platform/settings, the model classes and the master key rotation', async () => {
    await refused(await call(gateway, 'POST', '/v1/keys', { role: 'developer', bogus: 1 }, admin()), 'bogus');
    await refused(await call(gateway, 'POST', '/v1/keys', { role: 'developer', enviroment: 'staging' }, admin()), 'enviroment');
    await refused(await call(gateway, 'POST', '/v1/accounts', { name: 'Acme', plan: 'gold' }, { key: OPERATOR_KEY }), 'plan');
    await refused(await call(gateway, 'PUT', '/v1/platform/settings', { platform_markup_percnt: 9 }, { key: OPERATOR_KEY }), 'platform_markup_percnt');
    await refused(await call(gateway, 'PUT', '/v1/settings/model-classes', { classes: {}, clases: {} }, admin()), 'clases');
    await refused(await call(gateway, 'PUT', '/v1/settings/model-classes', { classes: { mid: { member: ['gpt-4o'] } } }, admin()), 'classes.mid.member');
    await refused(await call(gateway, 'POST', '/v1/admin/master-key/rotate', { wiat: false }, { key: OPERATOR_KEY }), 'wiat');
    const keys = (await (await call(gateway, 'GET', '/v1/keys', undefined, admin())).json()) as { keys: unknown[] };
    expect(keys.keys).toHaveLength(1);
  });

  test('settings stored by an older version, unknown members and all, still load and route', async () => {
    const { store, snapshots } = gateway.runtime;
    const account = snapshots.current.accounts.get('default');
    const routing = { strategy: 'cost_optimized', prefer_byok: true, bogus: 1, cost_weights: { openai: 0.8, opanai: 0.5 } };
    await store.updateAccountSettings('default', { ...account?.settings, routing, health_check: { ...SEED_HEALTH_CHECK, health_treshold: 50 } });
    const openai = snapshots.current.accountKeys.get('default')?.get('openai')?.[0];
    await store.execute('UPDATE provider_keys SET settings = ? WHERE id = ?', [JSON.stringify({ default_model: 'gpt-4o', max_tokens_defualt: 5 }), openai?.id]);
    await snapshots.refresh();
    const body = { model: 'gpt-4o', provider: 'openai', messages: [{ role: 'user', content: 'Hello!' }], routing: { strategy: 'direct' } };
    const answer = await call(gateway, 'POST', '/v1/chat/completions', body, admin());
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-provider-used')).toBe('openai');
    const settings = (await (await call(gateway, 'GET', '/v1/settings', undefined, admin())).json()) as { settings: { routing: unknown } };
    expect(settings.settings.routing).toEqual(routing);
    expect((await call(gateway, 'GET', '/v1/providers', undefined, admin())).status).toBe(200);
    // Restored for the other tests of this file.
    await store.updateAccountSettings('default', { ...account?.settings });
    await snapshots.refresh();
  });
});
