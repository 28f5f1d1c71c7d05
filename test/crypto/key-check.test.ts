// The master key check (core/credentials/key-check.ts): sealed once per key version at first start,
// opened at every later start; a wrong key is refused with one line naming the version and where the
// key came from, never the key; previous keys keep their own checks.

import { afterEach, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  enforceKeyChecks,
  KEY_CHECK_SETTING,
  keyCheckBinding,
  MasterKeyCheckError,
  parseKeyChecks,
  verifyKeyChecksBeforeMigrations,
  verifyStoredKeyChecks,
} from '../../core/credentials/key-check.ts';
import { providerKeyBinding } from '../../core/credentials/snapshot.ts';
import { createLogger } from '../../core/logger.ts';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';
import type { Store } from '../../core/spec/store.ts';
import { createLocalCryptoBackend } from '../../plugins/crypto-local/index.ts';
import { openStorage } from '../../plugins/store-sqlite/database.ts';
import { SqliteStore } from '../../plugins/store-sqlite/store.ts';
import { encodingsOf, generateMasterKey, keyringFrom, temporaryDirectories } from './helpers.ts';

const stores: Store[] = [];
const directories = temporaryDirectories();
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  directories.cleanup();
});

const logger = createLogger('silent');

async function freshStore(): Promise<Store> {
  const store = new SqliteStore(await openStorage('file::memory:'));
  stores.push(store);
  await store.migrate([]);
  return store;
}

function backends(env: Record<string, string>): Map<string, CryptoBackend> {
  return new Map([['local', createLocalCryptoBackend(keyringFrom({}, env))]]);
}

async function storedChecks(store: Store) {
  return parseKeyChecks((await store.listPlatformSettings())[KEY_CHECK_SETTING]);
}

async function refusal(promise: Promise<unknown>): Promise<MasterKeyCheckError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MasterKeyCheckError) return error;
    throw error;
  }
  throw new Error('expected a MasterKeyCheckError');
}

describe('master key check', () => {
  test('is written once, at first start, and left alone by later starts with the same key', async () => {
    const store = await freshStore();
    const key = generateMasterKey();
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: key }), logger);
    const first = await storedChecks(store);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ backend: 'local', keyVersion: 1 });
    expect(first[0]?.ciphertext.startsWith('kw1.local.v1.')).toBe(true);

    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: key }), logger);
    expect(await storedChecks(store)).toEqual(first);
    expect(await verifyStoredKeyChecks(store, backends({ KEYWAY_MASTER_KEY: key }))).toEqual([]);
  });

  test('a different valid key is refused in one line naming the version and the source, never the key', async () => {
    const store = await freshStore();
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: generateMasterKey() }), logger);
    const before = await storedChecks(store);
    const wrong = generateMasterKey();
    const error = await refusal(enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: wrong }), logger));
    expect(error.message).toMatch(/^Wrong master key: master key v1 \(from KEYWAY_MASTER_KEY\) does not match this database/);
    expect(error.message).not.toContain('\n');
    for (const leak of encodingsOf(Buffer.from(wrong, 'base64'))) expect(error.message).not.toContain(leak);
    expect(error.failures).toEqual([expect.objectContaining({ backend: 'local', keyVersion: 1, source: 'KEYWAY_MASTER_KEY' })]);
    // Nothing was rewritten: the check still belongs to the first key.
    expect(await storedChecks(store)).toEqual(before);
    // The same refusal comes before migrations, which write nothing.
    await refusal(verifyKeyChecksBeforeMigrations(store, backends({ KEYWAY_MASTER_KEY: wrong })));
  });

  test('a key file is named by its path', async () => {
    const store = await freshStore();
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: generateMasterKey() }), logger);
    const path = `${import.meta.dir}/no-such-dir/master.key`;
    const backend = createLocalCryptoBackend({
      ...keyringFrom({}, { KEYWAY_MASTER_KEY: generateMasterKey() }),
      sources: new Map([[1, `KEYWAY_MASTER_KEY_FILE ${path}`]]),
    });
    const error = await refusal(enforceKeyChecks(store, new Map([['local', backend]]), logger));
    expect(error.message).toContain(`(from KEYWAY_MASTER_KEY_FILE ${path})`);
  });

  test('the keyring says where each version came from', () => {
    const directory = directories.make();
    const keyFile = join(directory, 'keys');
    writeFileSync(keyFile, `v2:${generateMasterKey()}\n`, { mode: 0o600 });
    const fromFile = keyringFrom({}, { KEYWAY_MASTER_KEY_FILE: keyFile, KEYWAY_PREVIOUS_MASTER_KEYS: `v1:${generateMasterKey()}` });
    expect(Object.fromEntries(fromFile.sources ?? [])).toEqual({ 1: 'KEYWAY_PREVIOUS_MASTER_KEYS', 2: `KEYWAY_MASTER_KEY_FILE ${keyFile}` });
    // Generated by this load: the file was missing, which a refusal says (QA19 ops L6); found the next time.
    const generated = keyringFrom({}, {}, directory);
    expect(generated.sources?.get(1)).toBe(`${join(directory, 'master.key')}, which was missing`);
    expect(keyringFrom({}, {}, directory).sources?.get(1)).toBe(`the generated key file ${join(directory, 'master.key')}`);
    expect(keyringFrom({ masterKey: generateMasterKey() }).sources?.get(1)).toBe('the masterKey setting');
    expect(keyringFrom({ masterKeyFile: keyFile }).sources?.get(2)).toBe(`the masterKeyFile setting ${keyFile}`);
  });

  test('across key versions: a check per version, previous keys verified too, a new version gets its own check', async () => {
    const store = await freshStore();
    const v1 = generateMasterKey();
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: v1 }), logger);

    // Rotation: v2 current, v1 as a previous key. v1's check still opens, v2 gets one.
    const v2 = generateMasterKey();
    const rotated = { KEYWAY_MASTER_KEY: `v2:${v2}`, KEYWAY_PREVIOUS_MASTER_KEYS: `v1:${v1}` };
    await enforceKeyChecks(store, backends(rotated), logger);
    const checks = await storedChecks(store);
    expect(checks.map((check) => check.keyVersion).sort()).toEqual([1, 2]);
    expect(checks.find((check) => check.keyVersion === 2)?.ciphertext.startsWith('kw1.local.v2.')).toBe(true);

    // A wrong previous key is caught by v1's check, and the message says where it came from.
    const wrongPrevious = await refusal(
      enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: `v2:${v2}`, KEYWAY_PREVIOUS_MASTER_KEYS: `v1:${generateMasterKey()}` }), logger),
    );
    expect(wrongPrevious.message).toContain('master key v1 (from KEYWAY_PREVIOUS_MASTER_KEYS)');
    expect(wrongPrevious.message).not.toContain('v2 (');

    // A wrong current key is caught by v2's check.
    const wrongCurrent = await refusal(
      enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: `v2:${generateMasterKey()}`, KEYWAY_PREVIOUS_MASTER_KEYS: `v1:${v1}` }), logger),
    );
    expect(wrongCurrent.failures.map((failure) => failure.keyVersion)).toEqual([2]);

    // Both versions in one keyring works the same as current plus previous.
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: `v1:${v1},v2:${v2}` }), logger);

    // v1 retired: its check is kept (unopened) for the day it comes back.
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: `v2:${v2}` }), logger);
    expect((await storedChecks(store)).map((check) => check.keyVersion).sort()).toEqual([1, 2]);
  });

  test('a check moved to another version slot does not open', async () => {
    const store = await freshStore();
    const v1 = generateMasterKey();
    const v2 = generateMasterKey();
    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: `v1:${v1},v2:${v2}` }), logger);
    const checks = await storedChecks(store);
    const swapped = checks.map((check) => ({ ...check, keyVersion: check.keyVersion === 1 ? 2 : 1 }));
    await store.setPlatformSetting(KEY_CHECK_SETTING, { checks: swapped });
    const error = await refusal(enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: `v1:${v1},v2:${v2}` }), logger));
    expect(error.failures).toHaveLength(2);
    expect(keyCheckBinding('local', 1)).not.toBe(keyCheckBinding('local', 2));
  });

  test('a database from before key checks is proven by its stored provider keys before a check is written', async () => {
    const store = await freshStore();
    const right = generateMasterKey();
    const rightBackend = backends({ KEYWAY_MASTER_KEY: right }).get('local') as CryptoBackend;
    await store.insertAccount('acc_1', 'one');
    const binding = providerKeyBinding('pk_legacy', 'account', 'acc_1', 'openai');
    await store.insertProviderKeys([
      {
        id: 'pk_legacy',
        owner: 'account',
        accountId: 'acc_1',
        provider: 'openai',
        ciphertext: await rightBackend.encrypt('sk-legacy-secret', binding),
        keyVersion: 1,
        cryptoBackend: 'local',
        maskedKey: 'sk-…cret',
        fingerprint: 'sha256:0000000000000000',
        organizationId: null,
        settings: {},
        status: 'active',
        weight: 1,
      },
    ]);
    const error = await refusal(enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: generateMasterKey() }), logger));
    expect(error.message).toContain('does not decrypt the provider keys stored under v1 (pk_legacy)');
    expect(await storedChecks(store)).toEqual([]);

    await enforceKeyChecks(store, backends({ KEYWAY_MASTER_KEY: right }), logger);
    expect(await storedChecks(store)).toHaveLength(1);
  });

  test('a backend without the optional methods gets a check for its current version', async () => {
    const store = await freshStore();
    const local = backends({ KEYWAY_MASTER_KEY: generateMasterKey() }).get('local') as CryptoBackend;
    const minimal: CryptoBackend = { name: 'minimal', encrypt: local.encrypt, decrypt: local.decrypt, currentKeyVersion: () => 1 };
    await enforceKeyChecks(store, new Map([['minimal', minimal]]), logger);
    expect(await storedChecks(store)).toEqual([expect.objectContaining({ backend: 'minimal', keyVersion: 1 })]);
    const other = backends({ KEYWAY_MASTER_KEY: generateMasterKey() }).get('local') as CryptoBackend;
    const error = await refusal(enforceKeyChecks(store, new Map([['minimal', { ...minimal, decrypt: other.decrypt }]]), logger));
    expect(error.message).toContain("master key v1 of crypto backend 'minimal' does not match this database");
  });
});
