import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const UPSTREAM_KEY = 'sk-proj-AccountsTestKey000000000000000001';
let simulator: SimulatorHandle;
let gateway: TestGateway;
let defaultKeyId: string;
let otherAdminKey: string;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  const [stored] = await addProviderKeys(gateway, [{ name: 'openai', api_key: UPSTREAM_KEY }], gateway.defaultAdminKey);
  defaultKeyId = String(stored?.key_id);
  const created = await call(gateway, 'POST', '/v1/accounts', { name: 'Acme' });
  expect(created.status).toBe(201);
  otherAdminKey = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('principals', () => {
  test('the operator acts as admin of the default account', async () => {
    const response = await call(gateway, 'GET', '/v1/providers');
    const body = (await response.json()) as { providers: Array<{ key_id: string }> };
    expect(body.providers.map((provider) => provider.key_id)).toEqual([defaultKeyId]);
  });

  test('only the operator creates accounts', async () => {
    const response = await call(gateway, 'POST', '/v1/accounts', { name: 'Nope' }, { key: otherAdminKey });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe('permission_error');
  });

  test('account creation validates its body', async () => {
    const response = await call(gateway, 'POST', '/v1/accounts', { name: 42 });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe('name');
  });

  test('accounts are isolated: no listing, no use, no deletion of another account key', async () => {
    const listing = (await (await call(gateway, 'GET', '/v1/providers', undefined, { key: otherAdminKey })).json()) as { providers: unknown[] };
    expect(listing.providers).toEqual([]);
    const chat = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { key: otherAdminKey });
    expect(chat.status).toBe(503);
    const removal = await call(gateway, 'DELETE', `/v1/providers/keys/${defaultKeyId}`, undefined, { key: otherAdminKey });
    expect(removal.status).toBe(404);
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  test('account keys: create, use, list masked, revoke', async () => {
    const created = await call(gateway, 'POST', '/v1/keys', { name: 'ci', role: 'developer' }, { key: otherAdminKey });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; api_key: string; masked_key: string };
    expect(key.api_key).toMatch(/^kw_ak_/);
    const listed = (await (await call(gateway, 'GET', '/v1/keys', undefined, { key: otherAdminKey })).json()) as { keys: Array<Record<string, unknown>> };
    expect(JSON.stringify(listed)).not.toContain(key.api_key);
    expect(listed.keys.some((entry) => entry.id === key.id)).toBe(true);
    const developerManaging = await call(
      gateway,
      'POST',
      '/v1/providers/keys',
      { providers: [{ name: 'openai', api_key: 'sk-x-000000000000' }] },
      { key: key.api_key },
    );
    expect(developerManaging.status).toBe(403);
    expect((await call(gateway, 'DELETE', `/v1/keys/${key.id}`, undefined, { key: otherAdminKey })).status).toBe(204);
    expect((await call(gateway, 'GET', '/v1/models', undefined, { key: key.api_key })).status).toBe(401);
  });

  test('provider key validation names the wrong field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ providers: [{ name: 'openai' }] }, 'providers[0].api_key'],
      [{ providers: [{ name: 'openai', api_key: 'sk-x', settings: { temperature_default: 7 } }] }, 'providers[0].settings.temperature_default'],
      [{ providers: [{ name: 'openai', api_key: 'sk-x', settings: { base_url: 'ftp://x' } }] }, 'providers[0].settings.base_url'],
      [{ providers: [{ name: 'martian', api_key: 'sk-x' }] }, 'providers[0].name'],
      [{ providers: [] }, 'providers'],
      [{ providers: [{ name: 'openai', api_key: 'sk-x' }], encryption: { method: 'ROT13' } }, 'encryption.method'],
    ];
    for (const [body, param] of cases) {
      const response = await call(gateway, 'POST', '/v1/providers/keys', body);
      const error = ((await response.json()) as { error: { param: string; code: string } }).error;
      expect({ status: response.status, param: error.param }).toEqual({ status: 400, param });
    }
  });

  test('the same key twice is a conflict; a deleted key stops serving', async () => {
    const duplicate = await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_KEY }] });
    expect(duplicate.status).toBe(409);
    const [extra] = await addProviderKeys(gateway, [{ name: 'openai', api_key: UPSTREAM_KEY }], otherAdminKey);
    expect(
      (await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { key: otherAdminKey })).status,
    ).toBe(200);
    expect((await call(gateway, 'DELETE', `/v1/providers/keys/${extra?.key_id}`, undefined, { key: otherAdminKey })).status).toBe(204);
    expect(
      (await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { key: otherAdminKey })).status,
    ).toBe(503);
  });

  test('platform keys are operator-only and never used without permission', async () => {
    expect((await call(gateway, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_KEY }] }, { key: otherAdminKey })).status).toBe(
      403,
    );
    expect((await call(gateway, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_KEY }] })).status).toBe(201);
    const withoutPermission = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] },
      { key: otherAdminKey },
    );
    expect(withoutPermission.status).toBe(503);
    const withPermission = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], routing: { strategy: 'byok_preferred', fallback_to_parrotrouter: true } },
      { key: otherAdminKey },
    );
    expect(withPermission.status).toBe(200);
    expect(withPermission.headers.get('x-byok-used')).toBe('false');
    const byokOnly = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], routing: { strategy: 'direct', use_byok_only: true, fallback_to_parrotrouter: true } },
      { key: otherAdminKey },
    );
    // Asking for the platform's keys and forbidding them in one routing is refused, naming both.
    expect(byokOnly.status).toBe(400);
  });

  test('health and readiness', async () => {
    expect((await fetch(`${gateway.url}/health`)).status).toBe(200);
    const ready = await fetch(`${gateway.url}/ready`);
    expect(ready.status).toBe(200);
  });
});
