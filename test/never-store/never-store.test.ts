// Never-store mode end to end: the seed's compliance block as printed, a stored key reported and
// converted to a Vault reference (checked to be the same key, its ciphertext wiped from the database
// files), plaintext keys refused, references serving the official `openai` client against the
// simulators, the client's own key in X-Provider-Key for one request, and no key anywhere it must not be.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { rememberedMaskedFormCount } from '../../core/credentials/masked-keys.ts';
import { rememberedSecretCount } from '../../core/credentials/secret-values.ts';
import { addProviderKeys, call, expectSpecError, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startVaultSimulator, type VaultSimulator } from '../simulators/vault.ts';

const STORED_KEY = 'sk-proj-NeverStoreLegacyCanary0123456789abcdefgh';
const VAULT_KEY = 'sk-proj-NeverStoreVaultCanary0123456789abcdefghi';
const CLIENT_KEY = 'sk-proj-NeverStoreClientCanary0123456789abcdefgh';
const OTHER_KEY = 'sk-proj-NeverStoreOtherCanary0123456789abcdefghi';
const VAULT_TOKEN = 'hvs.NeverStoreVaultToken0123456789';
const CANARIES = [STORED_KEY, VAULT_KEY, CLIENT_KEY, VAULT_TOKEN];
const SEED_COMPLIANCE = {
  byok_compliance: { data_residency: 'never_store_keys', audit_logging: 'all_requests', encryption: 'FIPS-140-2', key_access_logs: true },
};

let openai: SimulatorHandle;
let vault: VaultSimulator;
let gateway: TestGateway;
let admin: string;
let legacyId: string;
let referenceId: string;
let oldCiphertext: string;
const answers: string[] = [];

async function answerOf(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text();
  answers.push(text);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Every spelling a key could sit in a file under: as is, base64, hex, UTF-16. */
function spellings(value: string): Buffer[] {
  const bytes = Buffer.from(value);
  return [
    bytes,
    Buffer.from(bytes.toString('base64')),
    Buffer.from(bytes.toString('base64url')),
    Buffer.from(bytes.toString('hex')),
    Buffer.from(value, 'utf16le'),
  ];
}

function databaseFiles(): Buffer[] {
  const base = join(gateway.dataDirectory, 'keyway.db');
  return [base, `${base}-wal`, `${base}-shm`].filter((path) => existsSync(path)).map((path) => readFileSync(path));
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [STORED_KEY, VAULT_KEY, CLIENT_KEY] });
  vault = startVaultSimulator({ tokens: [{ token: VAULT_TOKEN }] });
  vault.put('secret', 'keyway/default/openai', { api_key: VAULT_KEY });
  vault.put('secret', 'keyway/default/legacy', { api_key: STORED_KEY });
  vault.put('secret', 'keyway/default/other', { api_key: OTHER_KEY });
  gateway = await startTestGateway({
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_VAULT_ADDR: vault.url, KEYWAY_VAULT_TOKEN: VAULT_TOKEN, KEYWAY_AUDIT_FLUSH_MS: '50' },
  });
  admin = gateway.defaultAdminKey;
  const [legacy] = await addProviderKeys(gateway, [{ name: 'openai', api_key: STORED_KEY }], admin);
  legacyId = legacy?.key_id as string;
  // The ciphertext as the database holds it, read from a second connection before the conversion.
  const reader = new Database(join(gateway.dataDirectory, 'keyway.db'), { readonly: true });
  oldCiphertext = (reader.query('SELECT ciphertext FROM provider_keys WHERE id = ?').get(legacyId) as { ciphertext: string }).ciphertext;
  reader.close();
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  await vault.stop();
});

describe('never-store mode', () => {
  test("the seed's block is accepted as printed; the stored key is reported, not deleted", async () => {
    const response = await call(gateway, 'PUT', '/v1/settings/compliance', SEED_COMPLIANCE, { key: admin });
    const body = await answerOf(response);
    expect(response.status).toBe(200);
    const report = body.report as Record<string, { met: boolean; stored_key_ids?: string[]; action?: string }>;
    expect(report.data_residency).toMatchObject({ met: false, stored_key_ids: [legacyId] });
    expect(report.data_residency?.action).toContain(`/v1/providers/keys/{key_id}/convert`);
    const listing = await answerOf(await call(gateway, 'GET', '/v1/providers', undefined, { key: admin }));
    expect((listing.providers as Array<{ key_id: string; key_storage: string }>).map((key) => [key.key_id, key.key_storage])).toEqual([
      [legacyId, 'encrypted'],
    ]);
  });

  test('a plaintext api_key is refused with what to do instead', async () => {
    const response = await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: OTHER_KEY }] }, { key: admin });
    const body = await expectSpecError(response, 409, 'conflict');
    expect(body.error.message).toContain('never_store_keys');
    expect(body.error.message).toContain('key_reference');
    expect(body.error.message).toContain('X-Provider-Key');
    expect(JSON.stringify(body)).not.toContain(OTHER_KEY);
  });

  test('a key reference is stored as the reference: masked last four, a fingerprint of the reference, never the key', async () => {
    const response = await call(
      gateway,
      'POST',
      '/v1/providers/keys',
      { providers: [{ name: 'openai', key_reference: { source: 'vault-kv', locator: 'keyway/default/openai', options: { field: 'api_key' } } }] },
      { key: admin },
    );
    const body = await answerOf(response);
    expect(response.status).toBe(201);
    const [key] = body.providers as Array<Record<string, unknown>>;
    referenceId = key?.key_id as string;
    expect(key).toMatchObject({
      key_storage: 'reference',
      key_reference: { source: 'vault-kv', locator: 'keyway/default/openai', options: { field: 'api_key' } },
    });
    expect(key?.masked_key).toBe(`sk-proj-…${VAULT_KEY.slice(-4)}`);
    expect(key?.fingerprint).toMatch(/^ref:[0-9a-f]{16}$/);
  });

  test("references an account admin may not use are refused at add: Keyway's settings, files outside the directory, other accounts' paths", async () => {
    const add = (key_reference: Record<string, unknown>) =>
      call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', key_reference }] }, { key: admin });
    const master = await expectSpecError(await add({ source: 'env', locator: 'KEYWAY_MASTER_KEY' }), 400, 'invalid_field');
    expect(master.error.message).toContain("Keyway's own settings");
    await expectSpecError(await add({ source: 'file', locator: '/etc/passwd' }), 400, 'invalid_field');
    await expectSpecError(await add({ source: 'command', locator: 'cat /etc/passwd' }), 400, 'invalid_field');
    const other = await expectSpecError(await add({ source: 'vault-kv', locator: 'keyway/acme/openai' }), 400, 'invalid_field');
    expect(other.error.message).toContain('only paths under keyway/default/');
    await expectSpecError(await add({ source: 'nowhere', locator: 'x' }), 400, 'invalid_field');
  });

  test('convert refuses a reference to a different key and changes nothing', async () => {
    const response = await call(
      gateway,
      'POST',
      `/v1/providers/keys/${legacyId}/convert`,
      { key_reference: { source: 'vault-kv', locator: 'keyway/default/other' } },
      { key: admin },
    );
    const body = await expectSpecError(response, 400, 'invalid_field');
    expect(body.error.message).toContain('different key');
    expect(JSON.stringify(body)).not.toContain(OTHER_KEY);
    expect(JSON.stringify(body)).not.toContain(STORED_KEY);
    const listing = await answerOf(await call(gateway, 'GET', '/v1/providers', undefined, { key: admin }));
    expect((listing.providers as Array<{ key_id: string; key_storage: string }>).find((key) => key.key_id === legacyId)?.key_storage).toBe('encrypted');
  });

  test('convert with the matching reference replaces the ciphertext; the block is then met', async () => {
    const response = await call(
      gateway,
      'POST',
      `/v1/providers/keys/${legacyId}/convert`,
      { key_reference: { source: 'vault-kv', locator: 'keyway/default/legacy' } },
      { key: admin },
    );
    const body = await answerOf(response);
    expect(response.status).toBe(200);
    expect(body).toMatchObject({ key_id: legacyId, key_storage: 'reference', converted: true, ciphertext_wiped: true });
    const again = await call(
      gateway,
      'POST',
      `/v1/providers/keys/${legacyId}/convert`,
      { key_reference: { source: 'vault-kv', locator: 'keyway/default/legacy' } },
      { key: admin },
    );
    await expectSpecError(again, 409, 'conflict');
    const compliance = await answerOf(await call(gateway, 'GET', '/v1/settings/compliance', undefined, { key: admin }));
    expect((compliance.report as Record<string, { met: boolean }>).data_residency?.met).toBe(true);
  });

  test('references serve requests of the official openai client', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: admin, maxRetries: 0 });
    const served = new Set<string>();
    for (let index = 0; index < 6; index++) {
      const { data, response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `ref ${index}` }] })
        .withResponse();
      expect(data.choices[0]?.message.content).toBe(`Echo: ref ${index}`);
      served.add(response.headers.get('x-key-id') ?? '');
    }
    for (const keyId of served) expect([legacyId, referenceId]).toContain(keyId);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'streamed' }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Echo: streamed');
  });

  test('X-Provider-Key serves one request with the client’s key, booked as byok with no key id', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: admin, maxRetries: 0, defaultHeaders: { 'X-Provider-Key': CLIENT_KEY } });
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'my own key' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('Echo: my own key');
    expect(response.headers.get('x-key-id')).toBe('client_key');
    expect(response.headers.get('x-byok-used')).toBe('true');
    const requestId = response.headers.get('x-request-id');
    const upstream = openai.inferenceRequests().at(-1);
    expect(JSON.stringify(upstream?.headers ?? {})).toContain(CLIENT_KEY);
    await flushUsage(gateway);
    const row = (await gateway.runtime.store.listUsage('default')).find((usage) => usage.requestId === requestId);
    expect(row).toMatchObject({ byok: true, providerKeyId: null, provider: 'openai', status: 200 });
    // Redacted by value while the request ran, let go once it was booked: nothing accumulates.
    const remembered = rememberedSecretCount();
    const maskedForms = rememberedMaskedFormCount();
    for (let index = 0; index < 3; index++) {
      const headers = { 'X-Provider-Key': `sk-proj-DistinctClientKey${index}0123456789abcdefghij` };
      const response = await call(
        gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
        { key: admin, headers },
      );
      expect(response.status).toBe(502);
    }
    expect(rememberedSecretCount()).toBe(remembered);
    expect(rememberedMaskedFormCount()).toBe(maskedForms);
  });

  test('a refused X-Provider-Key fails that request only, without the key in the answer, and no stored key suffers', async () => {
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'bad key' }] },
      { key: admin, headers: { 'X-Provider-Key': 'sk-proj-WrongClientKey0123456789abcdefghijkl', 'X-Provider': 'openai' } },
    );
    const text = await response.text();
    answers.push(text);
    expect(response.status).toBe(502);
    expect(text).not.toContain('WrongClientKey0123456789');
    // The simulator answers as OpenAI does, quoting the key masked: `sk-****…****ijkl`. That form is
    // the client's key too (docs/api.md: no error answer quotes a key a client sent).
    expect(text).toContain('Incorrect API key provided: [REDACTED].');
    expect(text).not.toMatch(/\*{3,}ijkl/);
    const unknown = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
      { key: admin, headers: { 'X-Provider-Key': CLIENT_KEY, 'X-Provider': 'nope' } },
    );
    await expectSpecError(unknown, 400, 'invalid_field');
    const after = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still fine' }] },
      { key: admin },
    );
    expect(after.status).toBe(200);
  });

  test("X-Provider names whose key X-Provider-Key is: another provider's model is a 400 naming the conflict, not a 503 about keys", async () => {
    const ask = (body: Record<string, unknown>, provider: string) =>
      call(
        gateway,
        'POST',
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], ...body },
        { key: admin, headers: { 'X-Provider-Key': CLIENT_KEY, 'X-Provider': provider } },
      );
    const before = openai.inferenceRequests().length;
    // The account holds OpenAI keys: the old answer ("No openai provider key is configured") was untrue.
    const google = await expectSpecError(await ask({ model: 'gpt-4' }, 'google'), 400, 'invalid_field');
    expect(google.error.param).toBe('X-Provider');
    expect(google.error.message).toContain("google does not serve the model 'gpt-4' (openai does)");
    expect(google.error.message).toContain('X-Provider: openai');
    expect(google.error.message).toContain('google/gemini-2.5-pro');
    expect(google.error.message).not.toContain(CLIENT_KEY);
    const prefixed = await expectSpecError(await ask({ model: 'openai/gpt-4o-mini' }, 'anthropic'), 400, 'invalid_field');
    expect(prefixed.error.param).toBe('X-Provider');
    const field = await expectSpecError(await ask({ model: 'gpt-4o-mini', provider: 'openai' }, 'google'), 400, 'invalid_field');
    expect(field.error.message).toContain("the request's provider field names openai");
    expect(openai.inferenceRequests().length).toBe(before);
    // The same header and the model's own provider agree: served with the client's key.
    const agreed = await ask({ model: 'gpt-4o-mini' }, 'openai');
    expect(agreed.status).toBe(200);
    expect(agreed.headers.get('x-key-id')).toBe('client_key');
    // A name no provider is known to serve (a fine-tune) goes to the provider X-Provider names.
    const unknownModel = await ask({ model: 'ft-keyway-custom-model' }, 'openai');
    // The simulator knows no such model: it answered, so the request reached it with the client's key.
    const tried = (await unknownModel.json()) as { error: { attempts: Array<{ provider: string; key_id: string }> } };
    expect(tried.error.attempts).toMatchObject([{ provider: 'openai', key_id: 'client_key' }]);
  });

  test('the database files hold no key material: not the keys, not the old ciphertext', async () => {
    expect(oldCiphertext.length).toBeGreaterThan(40);
    const files = databaseFiles();
    expect(files.length).toBeGreaterThan(0);
    const needles = [
      ...CANARIES.filter((value) => value !== VAULT_TOKEN).flatMap(spellings),
      Buffer.from(oldCiphertext),
      Buffer.from(oldCiphertext.slice(10, 42)),
    ];
    for (const file of files) for (const needle of needles) expect(file.indexOf(needle)).toBe(-1);
    const reader = new Database(join(gateway.dataDirectory, 'keyway.db'), { readonly: true });
    const rows = reader.query('SELECT id, ciphertext, crypto_backend, fingerprint FROM provider_keys').all() as Array<Record<string, string>>;
    reader.close();
    for (const row of rows) expect(row.crypto_backend).toBe('key-reference');
    expect(rows.map((row) => JSON.parse(row.ciphertext as string).locator).sort()).toEqual(['keyway/default/legacy', 'keyway/default/openai']);
  });

  test('key access logs: each fetch and each use, with key id, principal and request id, never the key', async () => {
    const texts: string[] = [];
    const response = await call(gateway, 'GET', '/v1/audit-logs?type=key_access&limit=200', undefined, { key: admin });
    texts.push(await response.text());
    const events = (JSON.parse(texts[0] as string) as { events: Array<Record<string, unknown>> }).events;
    const actions = new Set(events.map((event) => event.action));
    expect(actions.has('provider_key.use')).toBe(true);
    expect(actions.has('provider_key.fetch')).toBe(true);
    expect(actions.has('provider_key.decrypt')).toBe(true);
    const use = events.find((event) => event.action === 'provider_key.use' && (event.target as { key_id: string }).key_id === 'client_key');
    expect(use?.request_id).toBeTruthy();
    for (const text of texts) for (const canary of CANARIES) expect(text).not.toContain(canary);
  });

  test('no key in any answer or log line', () => {
    const everything = [...answers, ...gateway.output].join('\n');
    for (const canary of CANARIES) expect(everything).not.toContain(canary);
  });
});
