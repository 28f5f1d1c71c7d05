// Several instances on one PostgreSQL database: their usage batches, written at the same time, are
// each folded into the analytics and reconciliation roll-ups exactly once (the batches serialize on an
// advisory lock, so a batch's ids are its own), and two instances migrating at once apply each
// migration once. Also the `?` → `$n` rewrite the contract's plugin SQL goes through.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Store, UsageKey, UsageRecord } from '../../core/spec/store.ts';
import { ROLLUP_MIGRATIONS, USAGE_ROLLUPS } from '../../plugins/analytics/rollup.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_ROLLUPS } from '../../plugins/reconciliation/schema.ts';
import { postgresStoreDriver } from '../../plugins/store-postgres/index.ts';
import { toPostgresPlaceholders } from '../../plugins/store-postgres/placeholders.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';
import { usageRecord } from '../helpers/usage-record.ts';

describe('placeholders', () => {
  test('? becomes $1, $2… in order; ?n becomes $n; quoted text and comments keep their ?', () => {
    expect(toPostgresPlaceholders('SELECT a FROM t WHERE b = ? AND c = ?')).toBe('SELECT a FROM t WHERE b = $1 AND c = $2');
    expect(toPostgresPlaceholders('WHERE id BETWEEN ?1 AND ?2')).toBe('WHERE id BETWEEN $1 AND $2');
    expect(toPostgresPlaceholders('SELECT \'?\', "a?" FROM t WHERE x = ? -- why?\n AND y = ?')).toBe(
      'SELECT \'?\', "a?" FROM t WHERE x = $1 -- why?\n AND y = $2',
    );
    expect(toPostgresPlaceholders("SELECT 'it''s ?' WHERE z = ?")).toBe("SELECT 'it''s ?' WHERE z = $1");
  });
});

const plugins = [
  { plugin: 'analytics', migrations: ROLLUP_MIGRATIONS.postgres ?? [] },
  { plugin: 'reconciliation', migrations: RECONCILIATION_MIGRATIONS.postgres ?? [] },
];
const rollups = [
  { plugin: 'analytics', statements: USAGE_ROLLUPS.postgres ?? [] },
  { plugin: 'reconciliation', statements: RECONCILIATION_USAGE_ROLLUPS.postgres ?? [] },
];

function usageRow(instance: number, index: number): UsageRecord {
  return usageRecord({
    requestId: `req_${instance}_${index}`,
    accountId: 'acct_a',
    gatewayKeyId: `key_${index % 3}`,
    teamId: index % 2 === 0 ? 'team_a' : null,
    endpoint: '/v1/chat/completions',
    provider: index % 5 === 0 ? 'anthropic' : 'openai',
    providerKeyId: 'pk_1',
    status: index % 11 === 0 ? 500 : 200,
    inputTokens: 100 + index,
    costUsd: index % 7 === 0 ? null : 0.001,
    createdAt: new Date(Date.UTC(2026, 10, 1, index % 4, index % 60)).toISOString(),
  });
}

const reachable = await postgresReachable();

describe.skipIf(!reachable)('three instances on one database', () => {
  let database: TestDatabase;
  let stores: Store[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    stores = await Promise.all([0, 1, 2].map(() => postgresStoreDriver.open(database.url, { dataDirectory: '/tmp', env: {} })));
  });

  afterAll(async () => {
    for (const store of stores) store.close();
    await database?.drop();
  });

  test('migrating at the same time applies each migration once', async () => {
    const reports = await Promise.all(stores.map((store) => store.migrate(plugins)));
    const applied = reports.flatMap((report) => report.applied);
    expect(new Set(applied).size).toBe(applied.length);
    const recorded = await stores[0]?.query('SELECT COUNT(*) AS count FROM keyway_migrations');
    expect(Number(recorded?.[0]?.count)).toBe(applied.length);
    for (const store of stores) store.setUsageRollups?.(rollups);
  });

  test('concurrent batches from every instance: the roll-ups equal the rows', async () => {
    const writes: Array<Promise<void>> = [];
    for (let batch = 0; batch < 10; batch++)
      for (const [instance, store] of stores.entries())
        writes.push(store.insertUsage(Array.from({ length: 50 }, (_, index) => usageRow(instance, batch * 50 + index))));
    await Promise.all(writes);
    const store = stores[0] as Store;
    const [rows] = await store.query(
      'SELECT COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(CASE WHEN unpriced = 1 THEN 0 ELSE cost_usd END) AS cost FROM usage_records',
    );
    const [hourly] = await store.query('SELECT SUM(requests) AS requests, SUM(input_tokens) AS input_tokens FROM usage_rollup_hourly');
    const [daily] = await store.query(
      'SELECT SUM(requests) AS requests, SUM(input_tokens) AS input_tokens, SUM(cost_usd) AS cost FROM usage_summary_model_daily',
    );
    expect(Number(rows?.requests)).toBe(1500);
    expect(Number(hourly?.requests)).toBe(1500);
    expect(Number(hourly?.input_tokens)).toBe(Number(rows?.input_tokens));
    expect(Number(daily?.requests)).toBe(1500);
    expect(Number(daily?.cost)).toBeCloseTo(Number(rows?.cost), 9);
    const [byok] = await store.query(
      "SELECT SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END) AS requests FROM usage_records WHERE provider IN ('openai', 'anthropic') AND byok = 1",
    );
    const [reconciled] = await store.query('SELECT SUM(requests) AS requests FROM reconciliation_usage_daily');
    expect(Number(reconciled?.requests)).toBe(Number(byok?.requests));
  });

  test('the optional methods: findUsageKeys, appendRows (all or none), replaceProviderKeySecret', async () => {
    const store = stores[1] as Store;
    const booked = (await store.query("SELECT request_id, account_id, created_at FROM usage_records WHERE request_id IN ('req_0_0', 'req_2_499')")).map(
      (row) => ({ requestId: String(row.request_id), accountId: String(row.account_id), createdAt: String(row.created_at) }),
    );
    expect(booked).toHaveLength(2);
    const latest = booked.map((key) => key.createdAt).sort()[1] as string;
    const keys = await store.findUsageKeys?.([...booked, { requestId: 'req_missing', accountId: 'acct_a', createdAt: latest }, booked[0] as UsageKey]);
    expect(keys?.map((key) => key.requestId).sort()).toEqual(['req_0_0', 'req_2_499']);
    expect(keys?.[0]?.accountId).toBe('acct_a');
    await store.execute('CREATE TABLE appended (id TEXT PRIMARY KEY, body TEXT, score BIGINT)');
    await store.appendRows?.(
      'appended',
      ['id', 'body', 'score'],
      [
        ['a1', "it's ? fine", 1],
        ['a2', null, 2],
      ],
    );
    await expect(
      store.appendRows?.(
        'appended',
        ['id', 'body', 'score'],
        [
          ['a3', 'x', 3],
          ['a1', 'duplicate', 4],
        ],
      ) ?? Promise.resolve(),
    ).rejects.toThrow();
    expect(await store.query('SELECT id, body, score FROM appended ORDER BY id')).toEqual([
      { id: 'a1', body: "it's ? fine", score: 1 },
      { id: 'a2', body: null, score: 2 },
    ]);
    await expect(store.appendRows?.('appended; DROP TABLE appended', ['id'], [['x']]) ?? Promise.resolve()).rejects.toThrow();
    await store.insertAccount('acct_a', 'A');
    const [key] = await store.insertProviderKeys([
      {
        id: 'pk_x',
        owner: 'account',
        accountId: 'acct_a',
        provider: 'openai',
        ciphertext: 'sealed-1',
        keyVersion: 1,
        cryptoBackend: 'local',
        maskedKey: 'sk-...0001',
        fingerprint: 'f1',
        organizationId: null,
        settings: {},
        status: 'active',
        weight: 1,
      },
    ]);
    expect(key?.id).toBe('pk_x');
    expect(await store.replaceProviderKeySecret?.('pk_x', { ciphertext: 'sealed-2', cryptoBackend: 'local', keyVersion: 2, fingerprint: 'f2' })).toBe(true);
    expect(await store.replaceProviderKeySecret?.('pk_missing', { ciphertext: 'x', cryptoBackend: 'local', keyVersion: 2, fingerprint: 'f' })).toBe(false);
    expect((await store.listActiveProviderKeys()).map((entry) => [entry.ciphertext, entry.keyVersion])).toEqual([['sealed-2', 2]]);
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): several instances skipped', () => {});
