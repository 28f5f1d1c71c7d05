// The store conformance suite: what every Store (core/spec/store.ts) must do, whatever database is
// behind it. Call it from your own test file with a function that opens an empty store:
//
//   describeStoreConformance('postgres', async () => {
//     const store = await postgresStoreDriver.open(testUrl, { dataDirectory, env: {} });
//     return { store, cleanup: () => { store.close(); dropTestDatabase(); } };
//   });
//
// Each group of tests gets a fresh store. Plugin migrations are written per dialect (PLUGIN_SQL
// below): a store with a new dialect adds its SQL there, everything else is dialect-free.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { journalText } from '../../core/wire/usage-journal-text.ts';
import type { KeyOwner } from '../../core/spec/provider.ts';
import type { Migration, NewGatewayKey, NewProviderKey, Store, UsageKey, UsageRecord } from '../../core/spec/store.ts';
import type { UsageFoldTable } from '../../core/spec/usage-fold.ts';
import { consistentReadTests } from './store-consistent-read.ts';

export interface OpenedStore {
  store: Store;
  cleanup(): Promise<void> | void;
}

export type OpenStore = () => Promise<OpenedStore>;

interface PluginTableSql {
  createNotes: string;
  addNoteTag: string;
  createTags: string;
  /** The table the consistent-read tests write while a read is open (store-consistent-read.ts). */
  createViewNotes: string;
  /** A statement every dialect refuses, to test a failing migration. */
  broken: string;
}

/** Plain SQL that SQLite and Postgres both accept; a dialect that differs gets its own entry. */
const STANDARD_SQL: PluginTableSql = {
  createNotes: 'CREATE TABLE conformance_notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, score INTEGER NOT NULL)',
  addNoteTag: 'ALTER TABLE conformance_notes ADD COLUMN tag TEXT',
  createTags: 'CREATE TABLE conformance_tags (name TEXT PRIMARY KEY)',
  createViewNotes: 'CREATE TABLE conformance_view_notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, score INTEGER NOT NULL)',
  broken: 'CREATE TABLE conformance_broken (id TEXT PRIMARY KEY, oops NOT_A_TYPE(',
};

/** The plugin tables the suite creates, by `store.dialect`; `?` placeholders are the contract's. */
const PLUGIN_SQL: Readonly<Record<string, PluginTableSql>> = { sqlite: STANDARD_SQL, postgres: STANDARD_SQL };

function pluginSql(store: Store): PluginTableSql {
  const sql = PLUGIN_SQL[store.dialect];
  if (sql === undefined) throw new Error(`No plugin-migration SQL for dialect '${store.dialect}': add it to PLUGIN_SQL in test/conformance/store.ts`);
  return sql;
}

/** Names that break naive SQL building: quotes, an injection attempt, backslashes, unicode. */
const HOSTILE_TEXT = `Robert'); DROP TABLE accounts; -- "Zoë" \\ 日本語 🚀`;

export function describeStoreConformance(name: string, openStore: OpenStore): void {
  describe(`store conformance: ${name}`, () => {
    describeMigrations(openStore);
    describePluginTables(openStore);
    describeAccounts(openStore);
    describeGatewayKeys(openStore);
    describeProviderKeys(openStore);
    describePlatformSettings(openStore);
    describeUsage(openStore);
    describeUsageFolds(openStore);
    describeConsistentReads(openStore);
  });
}

/** Optional in the contract, but a store that offers readConsistent must keep its promise (store-consistent-read.ts). */
function describeConsistentReads(openStore: OpenStore): void {
  describe('consistent reads (readConsistent)', () => {
    const store = useStore(openStore);
    consistentReadTests(store, () => pluginSql(store()).createViewNotes);
  });
}

/** A fresh store for one describe block, migrated unless the block tests migration itself. */
function useStore(openStore: OpenStore, options: { migrate: boolean } = { migrate: true }): () => Store {
  let opened: OpenedStore | undefined;
  beforeAll(async () => {
    opened = await openStore();
    if (options.migrate) await opened.store.migrate([]);
  });
  afterAll(async () => {
    await opened?.cleanup();
  });
  return () => {
    if (opened === undefined) throw new Error('the store did not open');
    return opened.store;
  };
}

function migration(id: string, ...statements: string[]): Migration {
  return { id, statements };
}

function describeMigrations(openStore: OpenStore): void {
  describe('migrations', () => {
    const store = useStore(openStore, { migrate: false });

    test('migrate([]) applies the core schema, then a second run applies nothing new', async () => {
      const first = await store().migrate([]);
      expect(first.applied.length).toBeGreaterThan(0);
      expect(first.latest).toBeDefined();
      expect(first.applied).toContain(first.latest as string);
      const second = await store().migrate([]);
      expect(second.applied).toEqual([]);
      expect(second.alreadyApplied).toBe(first.applied.length);
      expect(second.latest).toBe(first.latest as string);
    });

    test('ping resolves and the store names its driver and dialect', async () => {
      await expect(store().ping()).resolves.toBeUndefined();
      expect(store().driver.length).toBeGreaterThan(0);
      expect(store().dialect.length).toBeGreaterThan(0);
    });

    test('plugin migrations apply once, namespaced: two plugins may use the same migration id', async () => {
      const sql = pluginSql(store());
      const plugins = [
        { plugin: 'conformance-notes', migrations: [migration('0001_init', sql.createNotes)] },
        { plugin: 'conformance-tags', migrations: [migration('0001_init', sql.createTags)] },
      ];
      const first = await store().migrate(plugins);
      expect(first.applied).toHaveLength(2);
      expect(first.applied.some((id) => id.includes('conformance-notes'))).toBe(true);
      expect(first.applied.some((id) => id.includes('conformance-tags'))).toBe(true);
      expect((await store().migrate(plugins)).applied).toEqual([]);
    });

    test('a plugin upgrade applies only its new migration, after the old ones', async () => {
      const sql = pluginSql(store());
      const upgraded = [{ plugin: 'conformance-notes', migrations: [migration('0001_init', sql.createNotes), migration('0002_tag', sql.addNoteTag)] }];
      const report = await store().migrate(upgraded);
      expect(report.applied).toHaveLength(1);
      expect(report.applied[0]).toContain('0002_tag');
      await store().execute('INSERT INTO conformance_notes (id, body, score, tag) VALUES (?, ?, ?, ?)', ['n0', 'tagged', 1, 'red']);
      expect(await store().query('SELECT tag FROM conformance_notes WHERE id = ?', ['n0'])).toEqual([{ tag: 'red' }]);
    });

    test('a failing migration rejects, leaves nothing half-applied and is not recorded', async () => {
      const sql = pluginSql(store());
      const broken = [
        { plugin: 'conformance-broken', migrations: [migration('0001_init', sql.createTags.replace('conformance_tags', 'conformance_half'), sql.broken)] },
      ];
      await expect(store().migrate(broken)).rejects.toThrow();
      // Had the first statement survived, creating the same table again would fail.
      const fixed = [{ plugin: 'conformance-broken', migrations: [migration('0001_init', sql.createTags.replace('conformance_tags', 'conformance_half'))] }];
      expect((await store().migrate(fixed)).applied).toHaveLength(1);
    });
  });
}

function describePluginTables(openStore: OpenStore): void {
  describe('plugin tables through query/execute', () => {
    const store = useStore(openStore);
    beforeAll(async () => {
      await store().migrate([{ plugin: 'conformance-notes', migrations: [migration('0001_init', pluginSql(store()).createNotes)] }]);
    });

    test('execute writes with ? parameters and query reads them back', async () => {
      await store().execute('INSERT INTO conformance_notes (id, body, score) VALUES (?, ?, ?)', ['n1', 'first', 7]);
      await store().execute('INSERT INTO conformance_notes (id, body, score) VALUES (?, ?, ?)', ['n2', 'second', -3]);
      await store().execute('UPDATE conformance_notes SET score = ? WHERE id = ?', [8, 'n1']);
      const rows = await store().query('SELECT id, body, score FROM conformance_notes WHERE score > ? ORDER BY id', [0]);
      expect(rows).toEqual([{ id: 'n1', body: 'first', score: 8 }]);
    });

    test('parameters stay literal: quotes, unicode and an injection attempt', async () => {
      await store().execute('INSERT INTO conformance_notes (id, body, score) VALUES (?, ?, ?)', ['n3', HOSTILE_TEXT, 0]);
      expect(await store().query('SELECT body FROM conformance_notes WHERE id = ?', ['n3'])).toEqual([{ body: HOSTILE_TEXT }]);
      expect(await store().query('SELECT id FROM conformance_notes WHERE id = ?', ["x' OR '1'='1"])).toEqual([]);
      // Still answers: the DROP TABLE inside the text never ran.
      expect(await store().listAccounts()).toEqual([]);
    });

    test('query without parameters works, and null parameters are stored as NULL', async () => {
      await store().migrate([
        {
          plugin: 'conformance-notes',
          migrations: [migration('0001_init', pluginSql(store()).createNotes), migration('0002_tag', pluginSql(store()).addNoteTag)],
        },
      ]);
      await store().execute('INSERT INTO conformance_notes (id, body, score, tag) VALUES (?, ?, ?, ?)', ['n4', 'untagged', 1, null]);
      expect(await store().query('SELECT id FROM conformance_notes WHERE tag IS NULL ORDER BY id')).toEqual([
        { id: 'n1' },
        { id: 'n2' },
        { id: 'n3' },
        { id: 'n4' },
      ]);
    });
  });
}

function describeAccounts(openStore: OpenStore): void {
  describe('accounts', () => {
    const store = useStore(openStore);

    test('insertAccount returns the record; getAccount and listAccounts read it back', async () => {
      const inserted = await store().insertAccount('acc_one', 'Account One');
      expect(inserted).toEqual({ id: 'acc_one', name: 'Account One', createdAt: expect.any(String), settings: {} });
      expect(Number.isNaN(Date.parse(inserted.createdAt))).toBe(false);
      expect(await store().getAccount('acc_one')).toEqual(inserted);
      expect((await store().listAccounts()).find((account) => account.id === 'acc_one')).toEqual(inserted);
      expect(await store().getAccount('acc_missing')).toBeUndefined();
    });

    test('updateAccountSettings stores an object that reads back as an object', async () => {
      await store().insertAccount('acc_settings', 'Settings');
      const settings = { routing: { strategy: 'round_robin', weights: [1, 2.5] }, compliance: true, note: null, label: 'Zoë 🚀' };
      await store().updateAccountSettings('acc_settings', settings);
      expect((await store().getAccount('acc_settings'))?.settings).toEqual(settings);
      await store().updateAccountSettings('acc_settings', { compliance: false });
      expect((await store().getAccount('acc_settings'))?.settings).toEqual({ compliance: false });
      expect((await store().getAccount('acc_one'))?.settings).toEqual({});
    });

    test('names with quotes, unicode and an injection attempt stay literal', async () => {
      await store().insertAccount('acc_hostile', HOSTILE_TEXT);
      expect((await store().getAccount('acc_hostile'))?.name).toBe(HOSTILE_TEXT);
      expect((await store().listAccounts()).map((account) => account.id).sort()).toEqual(['acc_hostile', 'acc_one', 'acc_settings']);
    });
  });
}

function gatewayKey(id: string, accountId: string, role: NewGatewayKey['role'] = 'developer'): NewGatewayKey {
  return { id, accountId, role, name: `key ${id}`, keyHash: `hash_${id}`, maskedKey: `kw_ak_…${id.slice(-4)}` };
}

function describeGatewayKeys(openStore: OpenStore): void {
  describe('gateway keys', () => {
    const store = useStore(openStore);
    beforeAll(async () => {
      await store().insertAccount('acc_a', 'A');
      await store().insertAccount('acc_b', 'B');
    });

    test('insert returns the record with defaults; listActiveGatewayKeys includes it', async () => {
      const inserted = await store().insertGatewayKey(gatewayKey('gk_1', 'acc_a'));
      expect(inserted).toEqual({
        ...gatewayKey('gk_1', 'acc_a'),
        teamId: null,
        byokAccess: true,
        settings: {},
        createdAt: expect.any(String),
        revokedAt: null,
      });
      const explicit = await store().insertGatewayKey({ ...gatewayKey('gk_2', 'acc_a', 'viewer'), teamId: 'team_x', byokAccess: false, name: HOSTILE_TEXT });
      expect(explicit).toMatchObject({ teamId: 'team_x', byokAccess: false, name: HOSTILE_TEXT });
      const active = await store().listActiveGatewayKeys();
      expect(active.find((key) => key.id === 'gk_1')).toEqual(inserted);
      expect(active.find((key) => key.id === 'gk_2')).toEqual(explicit);
    });

    test('countGatewayKeys counts active keys of one role', async () => {
      await store().insertGatewayKey(gatewayKey('gk_admin_1', 'acc_a', 'admin'));
      await store().insertGatewayKey(gatewayKey('gk_admin_2', 'acc_b', 'admin'));
      expect(await store().countGatewayKeys('admin')).toBe(2);
      expect(await store().countGatewayKeys('viewer')).toBe(1);
      expect(await store().countGatewayKeys('operator')).toBe(0);
    });

    test('revoke is scoped to the account, happens once, and removes the key from the active list', async () => {
      expect(await store().revokeGatewayKey('gk_admin_2', 'acc_a')).toBe(false);
      expect(await store().revokeGatewayKey('gk_missing', 'acc_b')).toBe(false);
      expect(await store().revokeGatewayKey('gk_admin_2', 'acc_b')).toBe(true);
      expect(await store().revokeGatewayKey('gk_admin_2', 'acc_b')).toBe(false);
      const activeIds = (await store().listActiveGatewayKeys()).map((key) => key.id);
      expect(activeIds).not.toContain('gk_admin_2');
      expect(activeIds).toContain('gk_admin_1');
      expect(await store().countGatewayKeys('admin')).toBe(1);
    });
  });
}

function providerKey(id: string, owner: KeyOwner, accountId: string | null): NewProviderKey {
  return {
    id,
    owner,
    accountId,
    provider: 'openai',
    ciphertext: `kw1.local.v1.${id}.sealed`,
    keyVersion: 1,
    cryptoBackend: 'local',
    maskedKey: 'sk-…abcd',
    fingerprint: `fp_${id}`,
    organizationId: null,
    settings: { default_model: 'gpt-4o-mini', temperature_default: 0.25, label: 'clé 🔑' },
    status: 'active',
    weight: 1.5,
  };
}

function describeProviderKeys(openStore: OpenStore): void {
  describe('provider keys', () => {
    const store = useStore(openStore);
    const activeIds = async (): Promise<string[]> => (await store().listActiveProviderKeys()).map((key) => key.id).sort();
    beforeAll(async () => {
      await store().insertAccount('acc_a', 'A');
      await store().insertAccount('acc_b', 'B');
    });

    test('insertProviderKeys returns the stored records; listActiveProviderKeys reads them back', async () => {
      const batch = [providerKey('pk_a1', 'account', 'acc_a'), { ...providerKey('pk_platform', 'platform', null), organizationId: 'org_1', weight: 3 }];
      const inserted = await store().insertProviderKeys(batch);
      expect(inserted).toEqual(batch.map((key) => ({ ...key, createdAt: expect.any(String), deletedAt: null })));
      const listed = await store().listActiveProviderKeys();
      for (const record of inserted) expect(listed.find((key) => key.id === record.id)).toEqual(record);
    });

    test('insertProviderKeys is all or none: a batch with a duplicate primary key inserts nothing', async () => {
      await expect(store().insertProviderKeys([providerKey('pk_new_1', 'account', 'acc_a'), providerKey('pk_a1', 'account', 'acc_a')])).rejects.toThrow();
      await expect(store().insertProviderKeys([providerKey('pk_new_2', 'account', 'acc_b'), providerKey('pk_new_2', 'account', 'acc_b')])).rejects.toThrow();
      expect(await activeIds()).toEqual(['pk_a1', 'pk_platform']);
      expect(await store().insertProviderKeys([])).toEqual([]);
    });

    test('updateProviderKeyStatus changes only that key', async () => {
      await store().updateProviderKeyStatus('pk_a1', 'invalid');
      const listed = await store().listActiveProviderKeys();
      expect(listed.find((key) => key.id === 'pk_a1')?.status).toBe('invalid');
      expect(listed.find((key) => key.id === 'pk_platform')?.status).toBe('active');
    });

    test('deleteProviderKey is scoped to owner and account, and happens once', async () => {
      await store().insertProviderKeys([providerKey('pk_b1', 'account', 'acc_b')]);
      expect(await store().deleteProviderKey('pk_platform', 'account', 'acc_a')).toBe(false);
      expect(await store().deleteProviderKey('pk_platform', 'account', null)).toBe(false);
      expect(await store().deleteProviderKey('pk_a1', 'platform', null)).toBe(false);
      expect(await store().deleteProviderKey('pk_a1', 'account', 'acc_b')).toBe(false);
      expect(await activeIds()).toEqual(['pk_a1', 'pk_b1', 'pk_platform']);
      expect(await store().deleteProviderKey('pk_a1', 'account', 'acc_a')).toBe(true);
      expect(await store().deleteProviderKey('pk_a1', 'account', 'acc_a')).toBe(false);
      expect(await store().deleteProviderKey('pk_platform', 'platform', null)).toBe(true);
      expect(await activeIds()).toEqual(['pk_b1']);
    });

    // Optional, for master-key rotation (core/credentials/master-key-rotation.ts): skipped when absent.
    test('listSealedProviderKeys walks every row, deleted ones too, page by page, each row once', async () => {
      const list = store().listSealedProviderKeys?.bind(store());
      if (list === undefined) return;
      const seen: string[] = [];
      let cursor = '';
      for (let page = 0; page < 10; page++) {
        const rows = await list(cursor, 2);
        if (rows.length === 0) break;
        expect(rows.length).toBeLessThanOrEqual(2);
        seen.push(...rows.map((row) => row.id));
        cursor = (rows.at(-1) as { cursor: string }).cursor;
      }
      expect(seen.sort()).toEqual(['pk_a1', 'pk_b1', 'pk_platform']);
      const deleted = (await list('', 10)).find((row) => row.id === 'pk_a1');
      expect(deleted).toMatchObject({ owner: 'account', accountId: 'acc_a', provider: 'openai', status: 'deleted', deletedAt: expect.any(String) });
    });

    test('resealProviderKeys replaces a ciphertext only where the expected one is still stored', async () => {
      const reseal = store().resealProviderKeys?.bind(store());
      if (reseal === undefined) return;
      const before = (await store().listActiveProviderKeys()).find((key) => key.id === 'pk_b1');
      const stored = await reseal([
        { id: 'pk_b1', expectedCiphertext: before?.ciphertext ?? '', ciphertext: 'kw1.test.v2.resealed', keyVersion: 2, cryptoBackend: 'test' },
        { id: 'pk_platform', expectedCiphertext: 'not what is stored', ciphertext: 'kw1.test.v2.lost', keyVersion: 2, cryptoBackend: 'test' },
        { id: 'pk_missing', expectedCiphertext: 'x', ciphertext: 'y', keyVersion: 2, cryptoBackend: 'test' },
      ]);
      expect(stored).toEqual(['pk_b1']);
      const after = (await store().listActiveProviderKeys()).find((key) => key.id === 'pk_b1');
      expect(after).toMatchObject({ ciphertext: 'kw1.test.v2.resealed', keyVersion: 2, cryptoBackend: 'test', status: before?.status });
      expect(await reseal([])).toEqual([]);
    });

    // Two workers or instances adding the same key at once must not both store it: the store, not a
    // snapshot, is the one place that sees both (core/credentials/stored-once.ts).
    test('a live key is stored once per owner and provider: a second copy is refused, all or none', async () => {
      const twin = (id: string, owner: KeyOwner, accountId: string | null, fingerprint = 'fp_twin') => ({ ...providerKey(id, owner, accountId), fingerprint });
      await store().insertProviderKeys([twin('pk_twin_a', 'account', 'acc_a'), twin('pk_twin_p', 'platform', null)]);
      const before = await activeIds();
      await expect(store().insertProviderKeys([twin('pk_twin_a2', 'account', 'acc_a')])).rejects.toThrow();
      await expect(store().insertProviderKeys([twin('pk_twin_p2', 'platform', null)])).rejects.toThrow();
      // All or none: the batch's other key is not stored either.
      await expect(
        store().insertProviderKeys([twin('pk_twin_new', 'account', 'acc_b', 'fp_twin_new'), twin('pk_twin_a3', 'account', 'acc_a')]),
      ).rejects.toThrow();
      expect(await activeIds()).toEqual(before);
      // The same fingerprint for another account, or another provider, is another key.
      await store().insertProviderKeys([twin('pk_twin_b', 'account', 'acc_b'), { ...twin('pk_twin_a_groq', 'account', 'acc_a'), provider: 'groq' }]);
      // A deleted key is no twin: the key may be added again.
      expect(await store().deleteProviderKey('pk_twin_a', 'account', 'acc_a')).toBe(true);
      expect(await store().deleteProviderKey('pk_twin_p', 'platform', null)).toBe(true);
      await store().insertProviderKeys([twin('pk_twin_a4', 'account', 'acc_a'), twin('pk_twin_p4', 'platform', null)]);
      const twins = (await store().listActiveProviderKeys()).filter((key) => key.fingerprint === 'fp_twin').map((key) => key.id);
      expect(twins.sort()).toEqual(['pk_twin_a4', 'pk_twin_a_groq', 'pk_twin_b', 'pk_twin_p4']);
    });
  });
}

function describePlatformSettings(openStore: OpenStore): void {
  describe('platform settings', () => {
    const store = useStore(openStore);

    test('values of every JSON type round trip, and a second set overwrites', async () => {
      const values: Record<string, unknown> = {
        text: 'Zoë "quoted" 🚀',
        number: 0.1 + 0.2,
        integer: -42,
        flag: false,
        nothing: null,
        list: [1, 'two', { three: 3 }],
        object: { feePercent: 2.5, classes: { fast: ['gpt-4o-mini'] } },
        [HOSTILE_TEXT]: 'key stays literal',
      };
      for (const [key, value] of Object.entries(values)) await store().setPlatformSetting(key, value);
      expect(await store().listPlatformSettings()).toEqual(values);
      await store().setPlatformSetting('number', { replaced: true });
      await store().setPlatformSetting('flag', true);
      expect(await store().listPlatformSettings()).toEqual({ ...values, number: { replaced: true }, flag: true });
    });

    test('the configuration change version (where a store keeps one) starts at 0 and grows by one per recorded change, concurrent ones included', async () => {
      const read = store().configChangeVersion?.bind(store());
      const record = store().recordConfigChange?.bind(store());
      expect(read === undefined).toBe(record === undefined);
      if (read === undefined || record === undefined) return;
      const start = await read();
      expect(start).toBeGreaterThanOrEqual(0);
      await record();
      expect(await read()).toBe(start + 1);
      await Promise.all(Array.from({ length: 8 }, () => record()));
      expect(await read()).toBe(start + 9);
    });
  });
}

function usageRow(accountId: string, requestId: string, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId,
    accountId,
    gatewayKeyId: 'gk_1',
    teamId: null,
    projectTag: null,
    endpoint: '/v1/chat/completions',
    provider: 'openai',
    model: 'gpt-4o-mini',
    requestedModel: 'gpt-4o-mini',
    providerKeyId: 'pk_1',
    byok: true,
    status: 200,
    errorCode: null,
    inputTokens: 1_234_567,
    outputTokens: 89,
    cachedInputTokens: 0,
    cacheWriteTokens: 12,
    reasoningTokens: 7,
    costUsd: 0.000123456789,
    latencyMs: 1234.5,
    streamed: false,
    fallbackAttempts: 0,
    createdAt: '2025-01-02T03:04:05.678Z',
    ...overrides,
  };
}

/** Usage rows in a stable order (the contract does not fix one), with only the contract's fields. */
async function usageOf(store: Store, accountId: string, sample: UsageRecord): Promise<UsageRecord[]> {
  const fields = Object.keys(sample) as Array<keyof UsageRecord>;
  const rows = await store.listUsage(accountId);
  const picked = rows.map((row) => Object.fromEntries(fields.map((field) => [field, row[field]])) as unknown as UsageRecord);
  return picked.sort((left, right) => `${left.requestId}${left.createdAt}`.localeCompare(`${right.requestId}${right.createdAt}`));
}

/** A batch as the usage queue hands it over: with the journal's text where the store takes it (insertJournaledUsage). */
function insertJournaled(store: Store, rows: readonly UsageRecord[]): Promise<void> {
  return store.insertJournaledUsage !== undefined ? store.insertJournaledUsage(rows, journalText(rows)) : store.insertUsage(rows);
}

/** Values no ordinary request books, each field set so every one is compared. */
function unusualUsageRows(accountId: string): UsageRecord[] {
  const full = (requestId: string, overrides: Partial<UsageRecord>): UsageRecord =>
    usageRow(accountId, requestId, { cacheWrite1hTokens: 0, usageEstimated: false, ...overrides });
  return [
    full('req_unpriced', { costUsd: null, model: 'no-price-model', usageEstimated: true }),
    full('req_unicode', { projectTag: `${HOSTILE_TEXT} e\u0301 \u2028\u2029 line\nbreak\ttab`, teamId: 'équipe 🚀', requestedModel: 'модель' }),
    full('req_huge', {
      inputTokens: Number.MAX_SAFE_INTEGER,
      outputTokens: 2 ** 40,
      cachedInputTokens: 2 ** 33,
      cacheWriteTokens: 2 ** 32,
      cacheWrite1hTokens: 2 ** 31,
      reasoningTokens: 10 ** 12,
      costUsd: 123456.789012345,
      latencyMs: 0.001,
    }),
    full('req_unserved', {
      provider: null,
      model: null,
      providerKeyId: null,
      byok: false,
      status: 499,
      errorCode: 'client_closed',
      streamed: true,
      costUsd: 0,
    }),
  ];
}

function describeJournaledUsage(store: () => Store): void {
  test('a batch handed over as the queue does (journal text where taken) round trips exactly: null cost, unicode, huge counts', async () => {
    const rows = unusualUsageRows('acc_journaled');
    await insertJournaled(store(), rows);
    const sorted = [...rows].sort((left, right) => `${left.requestId}${left.createdAt}`.localeCompare(`${right.requestId}${right.createdAt}`));
    expect(await usageOf(store(), 'acc_journaled', rows[0] as UsageRecord)).toStrictEqual(sorted);
  });

  test('a batch handed over as the queue does is all or none', async () => {
    const invalid = usageRow('acc_journaled_bad', 'req_bad', { requestedModel: null as unknown as string });
    await expect(insertJournaled(store(), [usageRow('acc_journaled_bad', 'req_good'), invalid])).rejects.toThrow();
    expect(await store().listUsage('acc_journaled_bad')).toEqual([]);
  });
}

function describeUsageKeys(store: () => Store): void {
  test('findUsageKeys (where a store has it) finds every booked key asked for, over many windows, accounts and random ids, and no other request', async () => {
    const found = store().findUsageKeys;
    if (found === undefined) return;
    const base = Date.parse('2026-03-01T10:00:00.000Z');
    const rows = Array.from({ length: 1_200 }, (_, index) =>
      usageRow(index % 4 === 0 ? 'acc_keys_other' : 'acc_keys', `req_${crypto.randomUUID()}`, {
        createdAt: new Date(base + Math.floor(index / 3) * 997).toISOString(),
      }),
    );
    await store().insertUsage(rows);
    const asked = rows.filter((_, index) => index % 2 === 0);
    const missing = Array.from({ length: 10 }, (_, index) => ({
      requestId: `req_missing_${index}`,
      accountId: 'acc_keys',
      createdAt: (rows[index * 100] as UsageRecord).createdAt,
    }));
    const keys = await found.call(store(), [...missing, ...asked].reverse());
    const name = (key: UsageKey): string => `${key.requestId} ${key.accountId} ${key.createdAt}`;
    const names = new Set(keys.map(name));
    expect(asked.filter((row) => !names.has(name(row)))).toEqual([]);
    const askedIds = new Set(asked.map((row) => row.requestId));
    expect(keys.filter((key) => !askedIds.has(key.requestId))).toEqual([]);
  });
}

function describeUsage(openStore: OpenStore): void {
  describe('usage', () => {
    const store = useStore(openStore);
    const first = usageRow('acc_a', 'req_1');
    const failed = usageRow('acc_a', 'req_2', {
      teamId: 'team_x',
      projectTag: HOSTILE_TEXT,
      provider: null,
      model: null,
      providerKeyId: null,
      byok: false,
      status: 429,
      errorCode: 'rate_limited',
      streamed: true,
      fallbackAttempts: 2,
      costUsd: 0,
      latencyMs: 3,
    });
    const repeated = usageRow('acc_a', 'req_1', { createdAt: '2025-01-02T03:04:06.000Z', outputTokens: 90 });
    const other = usageRow('acc_b', 'req_3');

    test('a batch round trips field for field: booleans stay booleans, numbers exact, nulls null', async () => {
      await store().insertUsage([first, failed, other]);
      const rows = await usageOf(store(), 'acc_a', first);
      expect(rows).toStrictEqual([first, failed]);
      expect(typeof rows[1]?.byok).toBe('boolean');
      expect(typeof rows[1]?.streamed).toBe('boolean');
    });

    test('the audit marks round trip; a row without them reads as not audited, with nulls', async () => {
      const audited = usageRow('acc_audit', 'req_audited', { audited: true, clientIp: '203.0.113.7', actorRole: 'member', requestSha256: 'f'.repeat(64) });
      const plain = usageRow('acc_audit', 'req_plain');
      await store().insertUsage([audited, plain]);
      expect(await usageOf(store(), 'acc_audit', audited)).toStrictEqual([
        audited,
        { ...plain, audited: false, clientIp: null, actorRole: null, requestSha256: null },
      ]);
    });

    test('two rows with the same requestId are both kept', async () => {
      await store().insertUsage([repeated]);
      expect(await usageOf(store(), 'acc_a', first)).toStrictEqual([first, repeated, failed]);
    });

    test('accounts are isolated', async () => {
      expect(await usageOf(store(), 'acc_b', first)).toStrictEqual([other]);
      expect(await store().listUsage('acc_none')).toEqual([]);
    });

    test('a batch with an invalid row (null in a required field) rejects and writes nothing', async () => {
      const invalid = usageRow('acc_c', 'req_bad', { requestedModel: null as unknown as string });
      await expect(store().insertUsage([usageRow('acc_c', 'req_good'), invalid])).rejects.toThrow();
      expect(await store().listUsage('acc_c')).toEqual([]);
      await store().insertUsage([]);
      expect(await store().listUsage('acc_c')).toEqual([]);
    });

    describeJournaledUsage(store);
    describeUsageKeys(store);
  });
}

/** The commonest roll-up key: account, UTC day (the creation time cut to its date) and provider. */
export const ACCOUNT_DAY_PROVIDER_KEYS: UsageFoldTable['keys'] = [
  { column: 'account_id', from: 'account_id' },
  { column: 'day', from: 'created_at', length: 10 },
  { column: 'provider', from: 'provider' },
];

/** A plugin's roll-up declared as data: by account, day and provider of the served rows ('' for no provider). */
const FOLD_TABLE: UsageFoldTable = {
  table: 'conformance_fold_daily',
  where: [{ column: 'status', compare: '<>', value: 418 }],
  keys: ACCOUNT_DAY_PROVIDER_KEYS,
  sums: [
    { column: 'requests', of: 1 },
    { column: 'errors', of: 1, when: [{ column: 'status', compare: '>=', value: 400 }] },
    { column: 'input_tokens', of: 'input_tokens' },
    { column: 'priced_cost_usd', of: 'cost_usd', when: [{ column: 'unpriced', compare: '=', value: 0 }] },
    {
      column: 'team_requests',
      of: 1,
      when: [
        { column: 'team_id', is: 'not-null' },
        { column: 'team_id', in: ['team_a', 'team_b'] },
      ],
    },
  ],
};

function describeUsageFolds(openStore: OpenStore): void {
  describe('usage folds (where a store takes them)', () => {
    const store = useStore(openStore);
    const table = async (): Promise<Array<Record<string, unknown>>> =>
      (await store().query('SELECT * FROM conformance_fold_daily ORDER BY account_id, day, provider')).map((row) => ({
        ...row,
        priced_cost_usd: Number(Number(row.priced_cost_usd).toPrecision(12)),
      }));

    beforeAll(async () => {
      if (store().setUsageFolds === undefined) return;
      await store().migrate([
        {
          plugin: 'fold',
          migrations: [
            migration(
              '0001_fold',
              `CREATE TABLE conformance_fold_daily (account_id TEXT NOT NULL, day TEXT NOT NULL, provider TEXT NOT NULL, requests INTEGER NOT NULL,
                 errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL, priced_cost_usd REAL NOT NULL, team_requests INTEGER NOT NULL,
                 PRIMARY KEY (account_id, day, provider))`,
            ),
          ],
        },
      ]);
      store().setUsageFolds?.([{ plugin: 'fold', tables: [FOLD_TABLE] }]);
    });

    test('each batch adds its sums to the row of each key, across batches and both hand-overs; NULL meets no comparison', async () => {
      if (store().setUsageFolds === undefined) return;
      const row = (id: string, overrides: Partial<UsageRecord>): UsageRecord =>
        usageRow('acc_fold', id, { createdAt: '2026-03-01T23:59:59.999Z', ...overrides });
      await store().insertUsage([
        row('f1', { teamId: 'team_a', costUsd: 0.1 }),
        row('f2', { status: 500, costUsd: 0.2, inputTokens: 10 }),
        row('f3', { provider: null, model: null, providerKeyId: null, status: 402, costUsd: 0 }),
        row('f4', { createdAt: '2026-03-02T00:00:00.000Z', costUsd: null, teamId: 'team_c' }),
        row('f5', { status: 418, inputTokens: 99 }),
      ]);
      await insertJournaled(store(), [
        row('f6', { teamId: 'team_b', costUsd: 0.3, inputTokens: 5 }),
        usageRow('acc_fold_other', 'f7', { createdAt: '2026-03-01T10:00:00.000Z' }),
      ]);
      expect(await table()).toEqual([
        { account_id: 'acc_fold', day: '2026-03-01', provider: '', requests: 1, errors: 1, input_tokens: 1_234_567, priced_cost_usd: 0, team_requests: 0 },
        {
          account_id: 'acc_fold',
          day: '2026-03-01',
          provider: 'openai',
          requests: 3,
          errors: 1,
          input_tokens: 1_234_567 + 10 + 5,
          priced_cost_usd: 0.6,
          team_requests: 2,
        },
        {
          account_id: 'acc_fold',
          day: '2026-03-02',
          provider: 'openai',
          requests: 1,
          errors: 0,
          input_tokens: 1_234_567,
          priced_cost_usd: 0,
          team_requests: 0,
        },
        {
          account_id: 'acc_fold_other',
          day: '2026-03-01',
          provider: 'openai',
          requests: 1,
          errors: 0,
          input_tokens: 1_234_567,
          priced_cost_usd: 0.000123456789,
          team_requests: 0,
        },
      ]);
    });

    test('a batch that fails adds nothing to the folded table', async () => {
      if (store().setUsageFolds === undefined) return;
      const before = await table();
      const invalid = usageRow('acc_fold', 'bad', { requestedModel: null as unknown as string });
      await expect(insertJournaled(store(), [usageRow('acc_fold', 'good'), invalid])).rejects.toThrow();
      expect(await table()).toEqual(before);
    });
  });
}
