// The Vault Transit simulator is as strict as Vault where Keyway relies on it: a test passing against
// a lax simulator would prove nothing.

import { afterAll, describe, expect, test } from 'bun:test';
import { startVaultTransitSimulator } from './vault-transit.ts';

const TOKEN = 'hvs.SimulatorToken000000000000000000';
const vault = startVaultTransitSimulator({ token: TOKEN, namespace: 'team-a', keys: { plain: {}, derived: { derived: true } } });
afterAll(() => vault.stop());

const b64 = (text: string): string => Buffer.from(text).toString('base64');

async function transit(path: string, body?: unknown, headers: Record<string, string> = { 'x-vault-token': TOKEN, 'x-vault-namespace': 'team-a' }) {
  const response = await fetch(`${vault.url}/v1/transit/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as { data?: Record<string, unknown>; errors?: string[] } };
}

describe('Vault Transit simulator', () => {
  test('missing or wrong token: 403 permission denied; wrong namespace: no route', async () => {
    expect(await transit('keys/plain', undefined, { 'x-vault-namespace': 'team-a' })).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect((await transit('keys/plain', undefined, { 'x-vault-token': 'hvs.nope', 'x-vault-namespace': 'team-a' })).status).toBe(403);
    const outside = await transit('keys/plain', undefined, { 'x-vault-token': TOKEN });
    expect(outside.status).toBe(404);
    expect(outside.body.errors?.[0]).toContain('no handler for route');
  });

  test('keys: read answers versions; an unknown key is 404 on read and "encryption key not found" on use', async () => {
    const read = await transit('keys/plain');
    expect(read.body.data).toMatchObject({ latest_version: 1, min_decryption_version: 1, derived: false, type: 'aes256-gcm96' });
    expect((await transit('keys/missing')).status).toBe(404);
    expect(await transit('encrypt/missing', { plaintext: b64('x') })).toEqual({ status: 400, body: { errors: ['encryption key not found'] } });
  });

  test('plaintext and context must be base64; ciphertexts must carry the vault:vN: prefix', async () => {
    expect((await transit('encrypt/plain', { plaintext: 'not base64!' })).body.errors).toEqual(['failed to base64-decode plaintext']);
    expect((await transit('decrypt/plain', { ciphertext: 'abc' })).body.errors).toEqual(['invalid ciphertext: no prefix']);
    expect((await transit('encrypt/derived', { plaintext: b64('x'), context: '%%%' })).body.errors).toEqual(['failed to base64-decode context']);
  });

  test('a derived key needs a context, and only the same context decrypts', async () => {
    const missing = await transit('encrypt/derived', { plaintext: b64('secret') });
    expect(missing.status).toBe(400);
    expect(missing.body.errors?.[0]).toStartWith("missing 'context' for key derivation");
    const sealed = await transit('encrypt/derived', { plaintext: b64('secret'), context: b64('row-1') });
    const ciphertext = String(sealed.body.data?.ciphertext);
    expect(ciphertext).toStartWith('vault:v1:');
    expect((await transit('decrypt/derived', { ciphertext, context: b64('row-1') })).body.data?.plaintext).toBe(b64('secret'));
    expect(await transit('decrypt/derived', { ciphertext, context: b64('row-2') })).toEqual({
      status: 400,
      body: { errors: ['cipher: message authentication failed'] },
    });
  });

  test('rotation, rewrap, min_decryption_version and batches with partial failures', async () => {
    const old = String((await transit('encrypt/plain', { plaintext: b64('v1 data') })).body.data?.ciphertext);
    expect(vault.rotate('plain')).toBe(2);
    const rewrapped = await transit('rewrap/plain', { ciphertext: old });
    expect(rewrapped.body.data).toMatchObject({ key_version: 2 });
    expect(String(rewrapped.body.data?.ciphertext)).toStartWith('vault:v2:');
    vault.setMinDecryptionVersion('plain', 2);
    expect((await transit('decrypt/plain', { ciphertext: old })).body.errors?.[0]).toContain('disallowed by policy');
    const batch = [{ ciphertext: String(rewrapped.body.data?.ciphertext) }, { ciphertext: old }];
    const strict = await transit('decrypt/plain', { batch_input: batch });
    expect(strict.status).toBe(400);
    const partial = await transit('decrypt/plain', { batch_input: batch, partial_failure_response_code: 200 });
    expect(partial.status).toBe(200);
    const results = partial.body.data?.batch_results as Array<{ plaintext?: string; error?: string }>;
    expect(results[0]?.plaintext).toBe(b64('v1 data'));
    expect(results[1]?.error).toContain('disallowed by policy');
    expect((await transit('decrypt/plain', { batch_input: [{ ciphertext: old }], partial_failure_response_code: 200 })).status).toBe(400);
  });
});
