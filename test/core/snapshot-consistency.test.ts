// A snapshot load is one state of the database (core/credentials/snapshot.ts, Store.readConsistent).
// It used to be several independent reads: a management change landing between the core's tables and
// a plugin's section gave a snapshot that never existed in the database (a member key still active
// whose team was already deleted, a provider key re-sealed in one part and not the other) until the
// next reload. Here the change is injected at the worst moment, after the core's four tables were read
// and before the teams section is, on each store the gateway runs on: the snapshot must be the state
// before the change, whole, and the next load the state after it, whole.

import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSnapshots } from '../../core/credentials/snapshot.ts';
import type { SnapshotSection } from '../../core/spec/plugin.ts';
import type { Store } from '../../core/spec/store.ts';
import { postgresStoreDriver } from '../../plugins/store-postgres/index.ts';
import { sqliteStoreDriver } from '../../plugins/store-sqlite/index.ts';
import { loadTeamsSection, TEAMS_SECTION, type TeamsSection } from '../../plugins/teams/index.ts';
import { MIGRATIONS as TEAMS_MIGRATIONS } from '../../plugins/teams/records.ts';
import { openLibsqlFileStore } from '../store-sqlite/libsql-file.ts';
import { createTestDatabase, postgresReachable } from '../store-postgres/database.ts';
import { injectedChange, interceptedView } from '../helpers/injected-change.ts';

interface Opened {
  store: Store;
  cleanup(): Promise<void> | void;
}

function temporaryDirectory(): { directory: string; remove(): void } {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-snapshot-consistency-'));
  return { directory, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

async function openSqlite(url: (directory: string) => string): Promise<Opened> {
  const { directory, remove } = temporaryDirectory();
  const store = await sqliteStoreDriver.open(url(directory), { dataDirectory: directory, env: {} });
  return {
    store,
    cleanup() {
      store.close();
      remove();
    },
  };
}

const STORES: Array<[string, () => Promise<Opened>]> = [
  ['sqlite (file, bun:sqlite)', () => openSqlite((directory) => `file:${join(directory, 'keyway.db')}`)],
  ['sqlite (:memory:)', () => openSqlite(() => ':memory:')],
  [
    'libSQL (the native client on a file)',
    async () => {
      const { directory, remove } = temporaryDirectory();
      const store = await openLibsqlFileStore(join(directory, 'keyway.db'));
      return {
        store,
        cleanup() {
          store.close();
          remove();
        },
      };
    },
  ],
];
if (await postgresReachable()) {
  STORES.push([
    'postgres',
    async () => {
      const database = await createTestDatabase();
      const store = await postgresStoreDriver.open(database.url, { dataDirectory: tmpdir(), env: {} });
      return {
        store,
        async cleanup() {
          store.close();
          await database.drop();
        },
      };
    },
  ]);
}

const TEAM = 'team_platform';
const MEMBER_KEY = 'gk_member';
const REISSUED_KEY = 'gk_member_reissued';
const PROVIDER_KEY = 'pk_shared';

async function seed(store: Store): Promise<void> {
  await store.migrate([{ plugin: 'teams', migrations: TEAMS_MIGRATIONS[store.dialect as 'sqlite' | 'postgres'] }]);
  await store.insertAccount('acc_one', 'One');
  const now = new Date().toISOString();
  await store.execute('INSERT INTO teams (id, account_id, name, permissions, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, NULL)', [
    TEAM,
    'acc_one',
    'Platform',
    '{}',
    now,
    now,
  ]);
  await store.insertGatewayKey({
    id: MEMBER_KEY,
    accountId: 'acc_one',
    role: 'developer',
    name: 'member',
    keyHash: 'hash_member',
    maskedKey: 'kw_ak_…mber',
    teamId: TEAM,
  });
  await store.insertProviderKeys([
    {
      id: PROVIDER_KEY,
      owner: 'account',
      accountId: 'acc_one',
      provider: 'openai',
      ciphertext: 'sealed-v1',
      keyVersion: 1,
      cryptoBackend: 'local',
      maskedKey: 'sk-…abcd',
      fingerprint: 'fp_shared',
      organizationId: null,
      settings: {},
      status: 'active',
      weight: 1,
    },
  ]);
  await store.setPlatformSetting('rollout', 'before');
}

/**
 * The management change, as the routes make it: the team deleted and its member key revoked, the
 * member given a re-issued key, the provider key re-sealed and paused, a platform setting changed.
 */
async function change(store: Store): Promise<void> {
  const now = new Date().toISOString();
  await store.execute('UPDATE teams SET deleted_at = ?, updated_at = ? WHERE id = ?', [now, now, TEAM]);
  await store.revokeGatewayKey(MEMBER_KEY, 'acc_one');
  await store.insertGatewayKey({
    id: REISSUED_KEY,
    accountId: 'acc_one',
    role: 'developer',
    name: 'member',
    keyHash: 'hash_reissued',
    maskedKey: 'kw_ak_…sued',
    teamId: TEAM,
  });
  await store.resealProviderKeys?.([{ id: PROVIDER_KEY, expectedCiphertext: 'sealed-v1', ciphertext: 'sealed-v2', keyVersion: 2, cryptoBackend: 'local' }]);
  await store.updateProviderKeyStatus(PROVIDER_KEY, 'paused');
  await store.setPlatformSetting('rollout', 'after');
  await store.recordConfigChange?.();
}

const TEAMS: SnapshotSection = { name: TEAMS_SECTION, load: loadTeamsSection };

/** What the snapshot holds of the changed rows. */
function picture(snapshots: ConfigSnapshots) {
  const current = snapshots.current;
  const memberKeys = [...current.principalsByHash.values()].filter((principal) => principal.teamId === TEAM).map((principal) => principal.keyId);
  const teams = snapshots.section<TeamsSection>(TEAMS_SECTION);
  const sealed = current.secrets.get(PROVIDER_KEY);
  return {
    memberKeys: memberKeys.sort(),
    teamLive: teams?.byId.has(TEAM) ?? false,
    providerKey: `${current.keysById.get(PROVIDER_KEY)?.status}:${sealed?.ciphertext}`,
    rollout: current.platformSettings.rollout,
  };
}

let opened: Opened | undefined;
afterEach(async () => {
  await opened?.cleanup();
  opened = undefined;
});

describe('a snapshot load is one state of the database', () => {
  for (const [name, open] of STORES) {
    test(`${name}: a change landing between the core's tables and a section's read is in none of the snapshot, then in all of the next`, async () => {
      opened = await open();
      const real = opened.store;
      await seed(real);
      const injected = injectedChange('FROM teams', () => change(real));
      const snapshots = new ConfigSnapshots(interceptedView(real, injected), undefined, [{ plugin: 'teams', value: TEAMS }]);
      await snapshots.load();
      expect(injected.armed).toBe(false);
      // Before: a member key whose team was already deleted, in the same snapshot.
      expect(picture(snapshots)).toEqual({ memberKeys: [MEMBER_KEY], teamLive: true, providerKey: 'active:sealed-v1', rollout: 'before' });
      await snapshots.catchUp('the change');
      const resealed = real.resealProviderKeys === undefined ? 'sealed-v1' : 'sealed-v2';
      expect(picture(snapshots)).toEqual({ memberKeys: [REISSUED_KEY], teamLive: false, providerKey: `paused:${resealed}`, rollout: 'after' });
    });
  }

  test('a store without readConsistent is still read (independent reads, as before)', async () => {
    opened = await openSqlite(() => ':memory:');
    const real = opened.store;
    await seed(real);
    const plain = new Proxy(real, { get: (object, property) => (property === 'readConsistent' ? undefined : Reflect.get(object, property, object)) });
    const snapshots = new ConfigSnapshots(plain, undefined, [{ plugin: 'teams', value: TEAMS }]);
    await snapshots.load();
    expect(picture(snapshots)).toEqual({ memberKeys: [MEMBER_KEY], teamLive: true, providerKey: 'active:sealed-v1', rollout: 'before' });
  });
});
