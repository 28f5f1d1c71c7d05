// A reference that stops resolving at use (its Vault secret deleted, Vault down) fails that key's
// attempt only: routing moves on to the account's other key, the provider is not marked down for it,
// and with no other key the answer is a 503 naming the key source, never a key.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startVaultSimulator, type VaultSimulator } from '../simulators/vault.ts';

const VAULT_KEY = 'sk-proj-SourceFailureVault0123456789abcdefghijk';
const ENV_KEY = 'sk-proj-SourceFailureEnv0123456789abcdefghijklm';
const VAULT_TOKEN = 'hvs.SourceFailureToken0123456789';
let openai: SimulatorHandle;
let vault: VaultSimulator;
let gateway: TestGateway;
let vaultKeyId: string;
let envKeyId: string;

async function addReference(key_reference: Record<string, unknown>): Promise<string> {
  const response = await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', key_reference }] }, { key: gateway.defaultAdminKey });
  expect(response.status).toBe(201);
  return ((await response.json()) as { providers: Array<{ key_id: string }> }).providers[0]?.key_id as string;
}

const chat = (content: string) =>
  call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { key: gateway.defaultAdminKey });

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [VAULT_KEY, ENV_KEY] });
  vault = startVaultSimulator({ tokens: [{ token: VAULT_TOKEN }] });
  vault.put('secret', 'keyway/default/openai', { api_key: VAULT_KEY });
  gateway = await startTestGateway({
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_VAULT_ADDR: vault.url, KEYWAY_VAULT_TOKEN: VAULT_TOKEN, KEYWAY_KEY_OPENAI: ENV_KEY },
    probes: false,
  });
  vaultKeyId = await addReference({ source: 'vault-kv', locator: 'keyway/default/openai' });
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  await vault.stop();
});

test('with only the failing reference, the answer is a 503 naming the source, never a key', async () => {
  expect((await chat('works')).status).toBe(200);
  vault.deleteVersion('secret', 'keyway/default/openai', 1);
  gateway.runtime.vault.forget(vaultKeyId);
  const response = await chat('vault secret gone');
  // No upstream was called: no header names a provider or key as the one that answered (QA14 docs N8).
  for (const name of ['x-provider-used', 'x-model-used', 'x-byok-used', 'x-key-id'])
    expect({ name, value: response.headers.get(name) }).toEqual({ name, value: null });
  const body = await expectSpecError(response, 503, 'no_provider_available');
  expect(JSON.stringify(body)).toContain('vault-kv');
  expect(JSON.stringify(body)).not.toContain(VAULT_KEY);
});

test('with another key, every request is served by it and the provider stays available', async () => {
  envKeyId = await addReference({ source: 'env', locator: 'KEYWAY_KEY_OPENAI' });
  gateway.runtime.vault.forget(vaultKeyId);
  const vaultCallsBefore = vault.requests.length;
  for (let index = 0; index < 12; index++) {
    const response = await chat(`fallback ${index}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-key-id')).toBe(envKeyId);
  }
  // The failed reference is asked again after a few seconds, not on every request.
  expect(vault.requests.length - vaultCallsBefore).toBe(1);
  const health = (await (await call(gateway, 'GET', '/v1/providers/health', undefined, { key: gateway.defaultAdminKey })).json()) as {
    providers: Array<{ name: string; status: string }>;
  };
  expect(health.providers.find((provider) => provider.name === 'openai')?.status).not.toBe('disabled');
  expect(gateway.output.join('\n')).not.toContain(VAULT_KEY);
  expect(gateway.output.join('\n')).not.toContain(ENV_KEY);
});

test('a reference without a version follows Vault: a new version is used at the next cache miss', async () => {
  const rotated = 'sk-proj-SourceFailureRotated0123456789abcdefgh';
  openai.state.apiKeys.add(rotated);
  vault.put('secret', 'keyway/default/openai', { api_key: rotated });
  // The TTL ending, without waiting ten minutes.
  gateway.runtime.vault.forget(vaultKeyId);
  expect((await call(gateway, 'DELETE', `/v1/providers/keys/${envKeyId}`, undefined, { key: gateway.defaultAdminKey })).status).toBe(204);
  const response = await chat('rotated in vault');
  expect(response.status).toBe(200);
  expect(response.headers.get('x-key-id')).toBe(vaultKeyId);
  expect(JSON.stringify(openai.inferenceRequests().at(-1)?.headers ?? {})).toContain(rotated);
  expect(gateway.output.join('\n')).not.toContain(rotated);
});
