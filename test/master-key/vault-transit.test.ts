// The vault-transit crypto backend in a running gateway, against the Vault Transit simulator: keys
// sealed through Vault serve requests without a Vault call per request; a Transit key rotation plus
// POST /v1/admin/master-key/rotate re-wraps every data key in Vault (batch rewrap); stored keys move
// from the local backend to Vault the same way; bad Vault settings are refused at start.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startVaultTransitSimulator, type TransitSimulator } from '../simulators/vault-transit.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, chat, databaseBytes, makeDataDirectory, providerKeyRows, refusedStart, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(6, 'VLT');
const TOKEN = 'hvs.KeywayTestVaultToken0123456789abcdefXYZ';
const LOCAL = generateMasterKey();
let simulator: SimulatorHandle;
let vault: TransitSimulator;
const directory = makeDataDirectory();
const output: string[] = [];
const answers: string[] = [];
let gateway: Restartable | undefined;

const vaultEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
  KEYWAY_CRYPTO_BACKEND: 'vault-transit',
  KEYWAY_VAULT_ADDR: vault.url,
  KEYWAY_VAULT_TOKEN: TOKEN,
  KEYWAY_VAULT_NAMESPACE: 'platform/keyway',
  KEYWAY_VAULT_TRANSIT_KEY: 'keyway',
  ...extra,
});

async function restart(env: Record<string, string>): Promise<Restartable> {
  await gateway?.stop();
  gateway = await startAt(directory.path, env, { output });
  return gateway;
}

async function json(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text();
  answers.push(text);
  return JSON.parse(text) as Record<string, unknown>;
}

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
  vault = startVaultTransitSimulator({ token: TOKEN, namespace: 'platform/keyway', keys: { keyway: { derived: true }, plain: {} } });
});

afterAll(async () => {
  await gateway?.stop();
  await simulator.stop();
  await vault.stop();
  directory.remove();
});

describe('vault-transit in the gateway', () => {
  test('keys stored in the local backend move to Vault with a rotation, then the local key can go', async () => {
    let current = await restart({ KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: `1:${LOCAL}` });
    expect((await call(current, 'POST', '/v1/providers/keys', { providers: KEYS.slice(0, 2).map((api_key) => ({ name: 'openai', api_key })) })).status).toBe(
      201,
    );
    current = await restart(vaultEnv({ KEYWAY_MASTER_KEYS: `1:${LOCAL}` }));
    // Both backends decrypt; new keys go to Vault.
    expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    const moved = await json(await call(current, 'POST', '/v1/admin/master-key/rotate'));
    expect(moved).toMatchObject({ status: 'completed', backend: 'vault-transit', key_version: 1, rewrapped: 2, failed: 0 });
    expect(providerKeyRows(directory.path).map((row) => [row.crypto_backend, row.key_version, row.ciphertext.startsWith('kw1.vault.v1.vault:v1:')])).toEqual([
      ['vault-transit', 1, true],
      ['vault-transit', 1, true],
    ]);
    // The local key removed: start works (nothing is sealed under it any more), keys serve.
    current = await restart(vaultEnv());
    expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
  });

  test('requests do not call Vault once a key is decrypted', async () => {
    const current = gateway as Restartable;
    expect((await call(current, 'POST', '/v1/providers/keys', { providers: KEYS.slice(2, 6).map((api_key) => ({ name: 'openai', api_key })) })).status).toBe(
      201,
    );
    // Until every key has served once (and so was decrypted once).
    simulator.reset();
    for (let warm = 0; warm < 300 && new Set(simulator.inferenceRequests().map((request) => request.headers.authorization)).size < KEYS.length; warm++) {
      expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    }
    expect(new Set(simulator.inferenceRequests().map((request) => request.headers.authorization)).size).toBe(KEYS.length);
    const before = vault.calls.decrypt ?? 0;
    for (let request = 0; request < 30; request++) expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    expect(vault.calls.decrypt ?? 0).toBe(before);
  });

  test('a Transit key rotation, then a re-wrap in Vault (batch rewrap): the data keys never leave Vault', async () => {
    let current = gateway as Restartable;
    vault.rotate('keyway');
    const decryptsBefore = vault.calls.decrypt ?? 0;
    const rotated = await json(await call(current, 'POST', '/v1/admin/master-key/rotate'));
    expect(rotated).toMatchObject({ status: 'completed', backend: 'vault-transit', key_version: 2, rewrapped: 6, failed: 0 });
    expect(vault.calls.rewrap).toBe(6);
    expect(vault.calls.decrypt ?? 0).toBe(decryptsBefore);
    expect(providerKeyRows(directory.path).every((row) => row.key_version === 2 && row.ciphertext.startsWith('kw1.vault.v2.vault:v2:'))).toBe(true);
    const status = await json(await call(current, 'GET', '/v1/admin/master-key/status'));
    expect(status).toMatchObject({ backend: 'vault-transit', current_key_version: 2, key_versions: [1, 2], removable_versions: [1] });
    expect(status.validated_module).toMatchObject({ validated: false });
    // Retire v1 in Vault (min_decryption_version=2): start and serve as before.
    vault.setMinDecryptionVersion('keyway', 2);
    current = await restart(vaultEnv());
    for (let request = 0; request < 6; request++) expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
  });

  test('bad Vault settings are refused at start in one line, without the token', async () => {
    await gateway?.stop();
    gateway = undefined;
    const wrongToken = await refusedStart(directory.path, vaultEnv({ KEYWAY_VAULT_TOKEN: 'hvs.WrongTokenWrongTokenWrongToken00' }));
    expect(wrongToken).toContain("Vault Transit key read of key 'keyway' failed with 403: permission denied");
    expect(wrongToken).not.toContain('hvs.WrongToken');
    const unknownKey = await refusedStart(directory.path, vaultEnv({ KEYWAY_VAULT_TRANSIT_KEY: 'nope' }));
    expect(unknownKey).toContain("Vault Transit has no key 'nope' at mount 'transit'. Create it: vault write -f transit/keys/nope");
    const wrongNamespace = await refusedStart(directory.path, vaultEnv({ KEYWAY_VAULT_NAMESPACE: 'other' }));
    expect(wrongNamespace).toContain("is the Transit engine mounted at 'transit' in namespace 'other'?");
    const noAddress = await refusedStart(directory.path, { ...vaultEnv(), KEYWAY_VAULT_ADDR: '' });
    expect(noAddress).toContain('KEYWAY_CRYPTO_BACKEND is vault-transit, but KEYWAY_VAULT_ADDR is not set');
    const noCertificate = await refusedStart(directory.path, vaultEnv({ KEYWAY_VAULT_FIPS: 'true' }));
    expect(noCertificate).toContain('KEYWAY_VAULT_FIPS=true needs KEYWAY_VAULT_FIPS_CERTIFICATE');
    const notDerived = await refusedStart(
      directory.path,
      vaultEnv({ KEYWAY_VAULT_FIPS: 'true', KEYWAY_VAULT_FIPS_CERTIFICATE: '4776', KEYWAY_VAULT_TRANSIT_KEY: 'plain' }),
    );
    expect(notDerived).toContain('must be aes256-gcm96 and derived');
    // The keys are sealed by Vault: without it configured, start is refused rather than serving nothing.
    const withoutVault = await refusedStart(directory.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: `1:${LOCAL}` });
    expect(withoutVault).toContain("sealed by crypto backend 'vault-transit'");
    for (const message of [wrongToken, unknownKey, wrongNamespace, noAddress, noCertificate, notDerived, withoutVault]) expect(message).not.toContain(TOKEN);
  });

  test('canaries: no provider key, master key or Vault token in logs, answers, the database or what Vault received', () => {
    const logs = output.join('\n');
    const stored = databaseBytes(directory.path);
    const sentToVault = vault.bodies.join('\n');
    for (const secret of [...KEYS, LOCAL, TOKEN]) {
      expect(logs).not.toContain(secret);
      expect(answers.join('\n')).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
    // Envelope mode: Vault sees data keys only, never a provider key.
    for (const key of KEYS) {
      expect(sentToVault).not.toContain(key);
      expect(sentToVault).not.toContain(Buffer.from(key).toString('base64'));
    }
  });
});

describe('vault-transit declared FIPS', () => {
  test('seals each key in Vault itself (direct mode) and declares the validated module with its certificate', async () => {
    const fipsDirectory = makeDataDirectory();
    const fips = await startAt(fipsDirectory.path, vaultEnv({ KEYWAY_VAULT_FIPS: 'true', KEYWAY_VAULT_FIPS_CERTIFICATE: '4776' }));
    try {
      expect((await call(fips, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[0] }] })).status).toBe(201);
      expect((await call(fips, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
      const status = (await (await call(fips, 'GET', '/v1/admin/master-key/status')).json()) as Record<string, unknown>;
      expect(status.validated_module).toMatchObject({ validated: true, standard: 'FIPS 140-2', certificate: '4776' });
      // Direct mode: no local part after the Vault ciphertext.
      expect(providerKeyRows(fipsDirectory.path).map((row) => /^kw1\.vault\.v2\.vault:v2:[A-Za-z0-9+/=]+$/.test(row.ciphertext))).toEqual([true]);
      expect(databaseBytes(fipsDirectory.path)).not.toContain(KEYS[0] as string);
    } finally {
      await fips.stop();
      fipsDirectory.remove();
    }
  });
});
