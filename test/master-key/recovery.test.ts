// The operator lost the newest master key but kept an older one. Start is refused until the loss is
// acknowledged; then the keys sealed under the lost version are marked needs_reentry (nothing is
// deleted), everything under the kept version serves, and each lost key is re-sealed in place when
// its owner enters it again.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, chat, databaseBytes, databaseDump, makeDataDirectory, providerKeyRows, refusedStart, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(4, 'REC');
const KEPT = generateMasterKey();
const LOST = generateMasterKey();
const NEW = generateMasterKey();
let simulator: SimulatorHandle;
const directory = makeDataDirectory();
const output: string[] = [];
let gateway: Restartable | undefined;
let lostKeyId = '';
let keptIds: string[] = [];

const base = (): Record<string, string> => ({ KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` });

async function restart(env: Record<string, string>): Promise<Restartable> {
  await gateway?.stop();
  gateway = await startAt(directory.path, { ...base(), ...env }, { output });
  return gateway;
}

async function providers(current: Restartable): Promise<Array<{ key_id: string; status: string }>> {
  return ((await (await call(current, 'GET', '/v1/providers')).json()) as { providers: Array<{ key_id: string; status: string }> }).providers;
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
  // Two keys under v1; then v2 comes and a third key is sealed under it (no rotation yet).
  let current = await restart({ KEYWAY_MASTER_KEYS: `1:${KEPT}` });
  keptIds = (
    (await (await call(current, 'POST', '/v1/providers/keys', { providers: KEYS.slice(0, 2).map((api_key) => ({ name: 'openai', api_key })) })).json()) as {
      providers: Array<{ key_id: string }>;
    }
  ).providers.map((key) => key.key_id);
  current = await restart({ KEYWAY_MASTER_KEYS: `1:${KEPT},2:${LOST}` });
  const third = (await (await call(current, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[2] }] })).json()) as {
    providers: Array<{ key_id: string }>;
  };
  lostKeyId = third.providers[0]?.key_id ?? '';
  // A key added and deleted under v2: kept for history, unreadable once v2 is lost.
  const deleted = (await (await call(current, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[3] }] })).json()) as {
    providers: Array<{ key_id: string }>;
  };
  await call(current, 'DELETE', `/v1/providers/keys/${deleted.providers[0]?.key_id}`);
  await current.stop();
  gateway = undefined;
});

afterAll(async () => {
  await gateway?.stop();
  await simulator.stop();
  directory.remove();
});

describe('lost the newest master key, kept an older one', () => {
  test('without an acknowledgement the start is refused, naming the keys under the lost version; nothing is written', async () => {
    const before = databaseDump(directory.path);
    const message = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `1:${KEPT}` });
    expect(message).toContain(`master key v2 is not configured, but 1 stored provider key(s) are sealed under it (${lostKeyId})`);
    expect(message).toContain('KEYWAY_ALLOW_MISSING_KEY_VERSIONS=2');
    expect(databaseDump(directory.path)).toBe(before);
  });

  test('a malformed acknowledgement is refused', async () => {
    const message = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `1:${KEPT}`, KEYWAY_ALLOW_MISSING_KEY_VERSIONS: 'two' });
    expect(message).toContain('KEYWAY_ALLOW_MISSING_KEY_VERSIONS has the entry "two"');
  });

  test('acknowledged: the lost keys are marked needs_reentry, the kept ones serve, status says what to do', async () => {
    const current = await restart({ KEYWAY_MASTER_KEYS: `1:${KEPT}`, KEYWAY_ALLOW_MISSING_KEY_VERSIONS: '2' });
    const rows = providerKeyRows(directory.path).filter((row) => row.deleted_at === null);
    expect(rows).toHaveLength(3);
    expect(rows.find((row) => row.id === lostKeyId)).toMatchObject({ status: 'needs_reentry', key_version: 2 });
    // The unreadable ciphertext is kept: nothing is deleted.
    expect(rows.find((row) => row.id === lostKeyId)?.ciphertext.startsWith('kw1.local.v2.')).toBe(true);
    const listed = await providers(current);
    expect(listed.find((key) => key.key_id === lostKeyId)?.status).toBe('needs_reentry');
    // A key known to be unreadable is not a readiness problem: the instance serves what it can.
    expect((await call(current, 'GET', '/ready')).status).toBe(200);
    for (let attempt = 0; attempt < 6; attempt++) expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    const used = new Set(simulator.inferenceRequests().map((request) => request.headers.authorization));
    expect(used.has(`Bearer ${KEYS[2]}`)).toBe(false);
    const status = (await (await call(current, 'GET', '/v1/admin/master-key/status')).json()) as Record<string, unknown>;
    expect(status.lost_versions).toEqual([expect.objectContaining({ backend: 'local', key_version: 2, provider_keys: [lostKeyId] })]);
    expect(status.needs_reentry).toEqual([
      expect.objectContaining({ key_id: lostKeyId, provider: 'openai', action: expect.stringContaining('POST /v1/providers/keys') }),
    ]);
    // A rotation skips the marked key instead of failing on it.
    const rotated = (await (await call(current, 'POST', '/v1/admin/master-key/rotate')).json()) as Record<string, unknown>;
    // The deleted key under the lost version holds no ciphertext (wiped when it was deleted): nothing to skip.
    expect(rotated).toMatchObject({ status: 'completed', failed: 0, skipped_needs_reentry: 1, skipped_deleted_unreadable: 0, already_current: 2 });
  });

  test('a later start needs no acknowledgement', async () => {
    const current = await restart({ KEYWAY_MASTER_KEYS: `1:${KEPT}` });
    expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
  });

  test('entering the lost key again re-seals it in place, under the current version, and it serves', async () => {
    const current = gateway as Restartable;
    const unreadable = providerKeyRows(directory.path).find((row) => row.id === lostKeyId)?.ciphertext ?? '';
    expect(unreadable).toStartWith('kw1.local.v2.');
    const response = await call(current, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[2] }] });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { providers: Array<{ key_id: string }> };
    expect(body.providers.map((key) => key.key_id)).toEqual([lostKeyId]);
    expect(providerKeyRows(directory.path).find((row) => row.id === lostKeyId)).toMatchObject({ status: 'active', key_version: 1 });
    // The ciphertext under the lost version is gone from the files too, not only from the row: whoever
    // holds the lost key could open a copy. Its wrapped data key is what only it had.
    expect(databaseBytes(directory.path)).not.toContain(unreadable.split('.').slice(0, 4).join('.'));
    simulator.reset();
    // The pool picks keys by weight at random: ask until the re-sealed key has served (2/3 of picks
    // miss it, so 9 tries missed it 2.6 % of the time; 100 miss it once in 10^17).
    const servedBy = () => new Set(simulator.inferenceRequests().map((request) => request.headers.authorization));
    for (let attempt = 0; attempt < 100 && !servedBy().has(`Bearer ${KEYS[2]}`); attempt++) {
      expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    }
    expect(servedBy().has(`Bearer ${KEYS[2]}`)).toBe(true);
  });

  test('a new key goes in as v3 (v2 stays retired) and a rotation moves everything to it', async () => {
    const current = await restart({ KEYWAY_MASTER_KEYS: `1:${KEPT},3:${NEW}` });
    const rotated = (await (await call(current, 'POST', '/v1/admin/master-key/rotate')).json()) as Record<string, unknown>;
    expect(rotated).toMatchObject({ status: 'completed', key_version: 3, rewrapped: 3, failed: 0, skipped_deleted_unreadable: 0, removable_versions: [1] });
    expect(
      providerKeyRows(directory.path)
        .filter((row) => row.deleted_at === null)
        .map((row) => row.key_version),
    ).toEqual([3, 3, 3]);
    const next = await restart({ KEYWAY_MASTER_KEYS: `3:${NEW}` });
    expect((await call(next, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    expect(keptIds).toHaveLength(2);
  });

  test('canaries: no provider key or master key in logs or database files', () => {
    const logs = output.join('\n');
    const stored = databaseBytes(directory.path);
    for (const secret of [...KEYS, KEPT, LOST, NEW]) {
      expect(logs).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });
});
