// After a master-key rotation no ciphertext under the retired version is left in the database files:
// not in keyway.db, not in its WAL, not in its shared-memory index. The re-wrap replaces each row's
// data-key wrapping; the copies the files held of the rows as they were (the WAL's earlier page images,
// the main file's pages not yet checkpointed over) would still open under the retired key for whoever
// holds it and a copy of the files. QA17 found 4 such envelopes in keyway.db and 15 in its WAL after a
// rotation and two clean stops, the WAL at 22 MB. Driven as an operator does: over HTTP, then the files.
// The same holds for a sealed secret replaced or removed (a webhook secret, a reconciliation admin key):
// its old envelope does not stay in the files, where the master key would still open it.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, chat, databaseBytes, makeDataDirectory, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(6, 'RETIRED');
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
const ADMIN_KEY = 'sk-admin-CANARYRETIREDxDoNotLeak0123456789abcdef';
let simulator: SimulatorHandle;
const directory = makeDataDirectory();
let gateway: Restartable | undefined;

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
});

afterAll(async () => {
  await gateway?.stop();
  await simulator.stop();
  directory.remove();
});

async function restart(keyring: string): Promise<Restartable> {
  await gateway?.stop();
  gateway = await startAt(directory.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: keyring });
  return gateway;
}

async function stop(): Promise<void> {
  await gateway?.stop();
  gateway = undefined;
}

/** One column of the file's rows, read as an auditor would. */
function columnOf(path: string, sql: string): string[] {
  const database = new Database(join(path, 'keyway.db'), { readonly: true });
  try {
    return (database.query(sql).all() as Array<{ ciphertext: string }>).map((row) => row.ciphertext);
  } finally {
    database.close();
  }
}

/** Every sealed value the holders keep, read from the file as an auditor would. */
function storedCiphertexts(): string[] {
  const database = new Database(join(directory.path, 'keyway.db'), { readonly: true });
  try {
    const column = (sql: string) => (database.query(sql).all() as Array<{ ciphertext: string }>).map((row) => row.ciphertext);
    return [
      ...column("SELECT ciphertext FROM provider_keys WHERE ciphertext <> ''"),
      ...column('SELECT ciphertext FROM webhook_secrets'),
      ...column('SELECT ciphertext FROM reconciliation_admin_keys'),
      ...column('SELECT ciphertext FROM responses_stored'),
    ];
  } finally {
    database.close();
  }
}

/**
 * What is unique to an envelope under v1: its wrapped data key (`kw1.local.v1.<wrap>`). The re-wrap keeps
 * the sealed part as it is, so a copy of the old envelope is found by its wrapping, not by the whole text.
 */
function wrappingOf(ciphertext: string): string {
  const [format, backend, version, wrapping] = ciphertext.split('.');
  return `${format}.${backend}.${version}.${wrapping}`;
}

const walSize = (): number => {
  const path = join(directory.path, 'keyway.db-wal');
  return existsSync(path) ? statSync(path).size : 0;
};

/** Changes a stopped gateway's database as a version before secure_delete would have: freed pages and cells keep their bytes. */
function rewriteAsAnOlderVersion(path: string, statements: readonly string[]): void {
  const database = new Database(join(path, 'keyway.db'));
  try {
    database.run('PRAGMA busy_timeout = 5000');
    database.run('PRAGMA secure_delete = OFF');
    for (const statement of statements) database.run(statement);
  } finally {
    database.close();
  }
}

const occurrences = (bytes: string, text: string): number => bytes.split(text).length - 1;

describe('copies of ciphertexts under a retired master key', () => {
  test('after the rotation and a clean stop, no envelope under v1 is left in keyway.db, its WAL or its -shm', async () => {
    let current = await restart(`1:${FIRST}`);
    const added = await call(current, 'POST', '/v1/providers/keys', { providers: KEYS.slice(0, 4).map((api_key) => ({ name: 'openai', api_key })) });
    expect(added.status).toBe(201);
    expect((await call(current, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: KEYS[4] }] })).status).toBe(201);
    expect((await call(current, 'POST', '/v1/settings/webhook-secret', undefined, { key: current.defaultAdminKey })).status).toBe(201);
    expect((await call(current, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: ADMIN_KEY, verify: false })).status).toBe(200);
    const response = await call(current, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'kept under v1' });
    expect(response.status).toBe(200);
    await stop();

    const underFirst = storedCiphertexts();
    // 5 provider keys, the webhook secret, the admin key, the stored response.
    expect(underFirst).toHaveLength(8);
    for (const ciphertext of underFirst) expect(ciphertext).toStartWith('kw1.local.v1.');
    const wrappings = underFirst.map(wrappingOf);
    // The scan finds what is there: every v1 envelope is in the files before the rotation.
    const before = databaseBytes(directory.path);
    expect(wrappings.filter((wrapping) => !before.includes(wrapping))).toEqual([]);

    current = await restart(`1:${FIRST},2:${SECOND}`);
    const rotated = await call(current, 'POST', '/v1/admin/master-key/rotate');
    expect(rotated.status).toBe(200);
    expect(await rotated.json()).toMatchObject({ status: 'completed', rewrapped: 8, failed: 0, removable_versions: [1] });
    const found = (bytes: string) => wrappings.filter((wrapping) => bytes.includes(wrapping));
    // A copy of the files taken as soon as the rotation answers, the gateway still running.
    expect(found(databaseBytes(directory.path))).toEqual([]);
    expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    await stop();

    for (const ciphertext of storedCiphertexts()) expect(ciphertext).toStartWith('kw1.local.v2.');
    expect(found(databaseBytes(directory.path))).toEqual([]);
    // The stop checkpointed the WAL into the file and emptied it: it carries no stale pages into the next start.
    expect(walSize()).toBe(0);

    // v1 retired, as the docs say: the keys still serve, and still nothing under v1 is in the files.
    current = await restart(`2:${SECOND}`);
    expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    await stop();
    expect(found(databaseBytes(directory.path))).toEqual([]);
    expect(walSize()).toBe(0);
  });

  test('pages an older version freed without zeroing them lose their copies at the rotation too (VACUUM)', async () => {
    const older = makeDataDirectory();
    try {
      const first = await startAt(older.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: `1:${FIRST}` });
      const added = await call(first, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[5] }] });
      expect(added.status).toBe(201);
      await first.stop();
      // A page that held a copy of the key's row, freed without being zeroed (rows moved by a page split,
      // deleted, or rewritten elsewhere leave such pages): it sits on the free list, envelope and all.
      rewriteAsAnOlderVersion(older.path, ['CREATE TABLE moved_rows AS SELECT * FROM provider_keys', 'DROP TABLE moved_rows']);
      const database = new Database(join(older.path, 'keyway.db'), { readonly: true });
      const [ciphertext] = (database.query('SELECT ciphertext FROM provider_keys').all() as Array<{ ciphertext: string }>).map((row) => row.ciphertext);
      database.close();
      const wrapping = wrappingOf(String(ciphertext));
      expect(occurrences(databaseBytes(older.path), wrapping)).toBeGreaterThanOrEqual(2);

      const second = await startAt(older.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: `1:${FIRST},2:${SECOND}` });
      const rotated = await call(second, 'POST', '/v1/admin/master-key/rotate');
      expect(await rotated.json()).toMatchObject({ status: 'completed', rewrapped: 1, failed: 0, removable_versions: [1] });
      await second.stop();
      expect(occurrences(databaseBytes(older.path), wrapping)).toBe(0);
    } finally {
      older.remove();
    }
  });

  test('a replaced webhook secret, a replaced and a removed admin key: their old envelopes are not left in the files', async () => {
    const place = makeDataDirectory();
    try {
      const running = await startAt(place.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: `1:${FIRST}` });
      try {
        const adminKeyEnvelope = () => columnOf(place.path, 'SELECT ciphertext FROM reconciliation_admin_keys');
        const webhookEnvelope = () => columnOf(place.path, 'SELECT ciphertext FROM webhook_secrets');
        const putAdminKey = (adminKey: string) =>
          call(running, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: adminKey, verify: false });
        const setWebhookSecret = () => call(running, 'POST', '/v1/settings/webhook-secret', undefined, { key: running.defaultAdminKey });

        // Each read while the gateway runs, right after the change: what a copy of the files taken then would hold.
        const leftIn = (wrappings: readonly string[]) => wrappings.filter((wrapping) => databaseBytes(place.path).includes(wrapping));
        expect((await putAdminKey(ADMIN_KEY)).status).toBe(200);
        const firstAdminKey = adminKeyEnvelope().map(wrappingOf);
        expect((await putAdminKey(`${ADMIN_KEY}2`)).status).toBe(200);
        expect(leftIn(firstAdminKey)).toEqual([]);

        expect((await setWebhookSecret()).status).toBe(201);
        const firstSecret = webhookEnvelope().map(wrappingOf);
        expect((await setWebhookSecret()).status).toBe(201);
        expect(leftIn(firstSecret)).toEqual([]);

        const secondAdminKey = adminKeyEnvelope().map(wrappingOf);
        expect(firstAdminKey.length + firstSecret.length + secondAdminKey.length).toBe(3);
        expect((await call(running, 'DELETE', '/v1/reconciliation/admin-keys/openai')).status).toBe(204);
        expect(leftIn(secondAdminKey)).toEqual([]);
      } finally {
        await running.stop();
      }
    } finally {
      place.remove();
    }
  });
});
