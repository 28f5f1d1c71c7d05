// The `file` and `env` key sources give each account its own part (QA15 F1): before, the admin of
// another tenant registered `{"source":"file","locator":"<acme>/openai.key"}` (or acme's variable)
// and was served on acme's provider key, and the refusals told which files existed. End to end, with
// a restart in between: references stored before the fix stop resolving and the start says why; the
// single-company layout (keys at the top of the directory, `KEYWAY_KEY_OPENAI`) keeps working.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { referenceFingerprint, serializeReference } from '../../core/credentials/reference-format.ts';
import { CREATED_ACCOUNT_ID } from '../../core/spec/principal.ts';
import { KEY_REFERENCE_BACKEND, type KeyReference } from '../../core/spec/key-source.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { writeKeyFile } from './fixtures.ts';

const DEFAULT_FILE_KEY = 'sk-proj-ScopeDefaultFileCanary0123456789abcdefg';
const DEFAULT_ENV_KEY = 'sk-proj-ScopeDefaultEnvCanary0123456789abcdefgh';
const ACME_FILE_KEY = 'sk-proj-ScopeAcmeFileCanary0123456789abcdefghij';
const ACME_ENV_KEY = 'sk-proj-ScopeAcmeEnvCanary0123456789abcdefghijk';
const CANARIES = [DEFAULT_FILE_KEY, DEFAULT_ENV_KEY, ACME_FILE_KEY, ACME_ENV_KEY];
const HELLO = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'on whose bill?' }] };

let root: string;
let openai: SimulatorHandle;
let gateway: TestGateway;
let acme: { id: string; admin: string };
let other: { id: string; admin: string };
const legacy: Record<'file' | 'env', string> = { file: '', env: '' };

interface ErrorBody {
  error: { code: string; message: string; param: string | null };
}

async function account(first: TestGateway, name: string): Promise<{ id: string; admin: string }> {
  const response = await call(first, 'POST', '/v1/accounts', { name });
  const body = (await response.json()) as { id: string; admin_key: { api_key: string } };
  expect(response.status).toBe(201);
  return { id: body.id, admin: body.admin_key.api_key };
}

/** `key` undefined: the operator's, which acts on the `default` account. */
function addReference(key: string | undefined, reference: KeyReference): Promise<Response> {
  return call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', key_reference: reference }] }, { key });
}

/** A refusal's message with the locator it was asked for taken out: what tells two refusals apart. */
async function refusal(response: Response, locator: string): Promise<string> {
  const text = await response.text();
  for (const canary of CANARIES) expect(text).not.toContain(canary);
  const body = JSON.parse(text) as ErrorBody;
  expect({ status: response.status, code: body.error.code }).toEqual({ status: 400, code: 'invalid_field' });
  return body.error.message.replaceAll(locator, '<locator>');
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'keyway-scope-'));
  const keys = join(root, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  openai = startOpenAISimulator({ apiKeys: CANARIES });
  const base = {
    KEYWAY_DATA_DIR: join(root, 'data'),
    KEYWAY_DATABASE_URL: `file:${join(root, 'data', 'keyway.db')}`,
    KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
    KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
    KEYWAY_KEY_SOURCE_FILE_DIR: keys,
  };
  // Before the fix: two tenants, and the other one's references to acme's file and variable, stored
  // as the unscoped sources let them be (written to the store directly: the API refuses them now).
  const first = await startTestGateway({ env: base, probes: false });
  acme = await account(first, 'Acme');
  other = await account(first, 'Another tenant');
  for (const [source, locator] of [
    ['file', `${acme.id}/openai.key`],
    ['env', `KEYWAY_KEY_${acme.id}_OPENAI`],
  ] as const) {
    const reference = { source, locator };
    legacy[source] = `pk_legacy${source}0123456789abcdef`;
    await first.runtime.store.insertProviderKeys([
      {
        id: legacy[source],
        owner: 'account',
        accountId: other.id,
        provider: 'openai',
        ciphertext: serializeReference(reference),
        keyVersion: 0,
        cryptoBackend: KEY_REFERENCE_BACKEND,
        maskedKey: 'sk-…ijk',
        fingerprint: referenceFingerprint(reference),
        organizationId: null,
        settings: {},
        status: 'active',
        weight: 1,
      },
    ]);
  }
  await first.stop();
  // The operator's layout: acme's folder named by its id; the single-company key at the top.
  mkdirSync(join(keys, acme.id), { mode: 0o700 });
  writeKeyFile(keys, `${acme.id}/openai.key`, `${ACME_FILE_KEY}\n`);
  writeKeyFile(keys, 'openai.key', `${DEFAULT_FILE_KEY}\n`);
  gateway = await startTestGateway({
    env: { ...base, KEYWAY_KEY_OPENAI: DEFAULT_ENV_KEY, [`KEYWAY_KEY_${acme.id}_OPENAI`]: ACME_ENV_KEY },
    probes: false,
  });
});

afterAll(async () => {
  await gateway?.stop();
  await openai?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('file and env key sources, one part per account', () => {
  test('accounts created with POST /v1/accounts have the id shape the sources keep for them', () => {
    expect(acme.id).toMatch(CREATED_ACCOUNT_ID);
    expect(other.id).toMatch(CREATED_ACCOUNT_ID);
  });

  test('the single-company layout keeps working: keys at the top of the directory, KEYWAY_KEY_OPENAI', async () => {
    for (const reference of [
      { source: 'file', locator: 'openai.key' },
      { source: 'env', locator: 'KEYWAY_KEY_OPENAI' },
    ]) {
      const added = await addReference(undefined, reference);
      expect({ reference, status: added.status }).toEqual({ reference, status: 201 });
    }
    const answer = await call(gateway, 'POST', '/v1/chat/completions', HELLO);
    expect(answer.status).toBe(200);
  });

  test('an account uses the keys in its own folder and under its own names', async () => {
    for (const reference of [
      { source: 'file', locator: `${acme.id}/openai.key` },
      { source: 'env', locator: `KEYWAY_KEY_${acme.id}_OPENAI` },
    ]) {
      const added = await addReference(acme.admin, reference);
      expect({ reference, status: added.status }).toEqual({ reference, status: 201 });
    }
    expect((await call(gateway, 'POST', '/v1/chat/completions', HELLO, { key: acme.admin })).status).toBe(200);
  });

  test('another account can register neither, and learns nothing of what exists outside its part', async () => {
    const file = async (locator: string) => refusal(await addReference(other.admin, { source: 'file', locator }), locator);
    const env = async (locator: string) => refusal(await addReference(other.admin, { source: 'env', locator }), locator);
    const theirs = await file(`${acme.id}/openai.key`);
    expect(theirs).toContain(`among this account's key files (${other.id}/… in the key directory)`);
    // The same answer for acme's file, a file that is nowhere, one missing from its own folder, and the default account's.
    expect(await file(`${acme.id}/nothere.key`)).toBe(theirs);
    expect(await file(`${other.id}/nothere.key`)).toBe(theirs);
    expect(await file('openai.key')).toBe(theirs);
    const theirVariable = await env(`KEYWAY_KEY_${acme.id}_OPENAI`);
    expect(theirVariable).toContain(`among this account's (KEYWAY_KEY_${other.id}_…)`);
    expect(await env(`KEYWAY_KEY_${acme.id}_NOTHERE`)).toBe(theirVariable);
    expect(await env(`KEYWAY_KEY_${other.id}_NOTHERE`)).toBe(theirVariable);
    expect(await env('KEYWAY_KEY_OPENAI')).toBe(theirVariable);
  });

  test('references stored before the fix stop resolving, and the start said why', async () => {
    const output = gateway.output.join('\n');
    for (const source of ['file', 'env'] as const)
      expect(output).toContain(
        `provider key ${legacy[source]} of account ${other.id} is held as a reference of key source '${source}' outside what account ${other.id} may read`,
      );
    // Still listed (the owner sees what to replace), never served on acme's key.
    const listed = (await (await call(gateway, 'GET', '/v1/providers', undefined, { key: other.admin })).json()) as { providers: Array<{ key_id: string }> };
    expect(listed.providers.map((key) => key.key_id).sort()).toEqual([legacy.env, legacy.file].sort());
    const answer = await call(gateway, 'POST', '/v1/chat/completions', HELLO, { key: other.admin });
    const text = await answer.text();
    expect(answer.status).toBe(503);
    expect((JSON.parse(text) as ErrorBody).error.code).toBe('no_provider_available');
    expect(text).toContain('could not resolve provider key');
    for (const canary of CANARIES) expect(text).not.toContain(canary);
  });
});
