// Keyway's side of the reconciliation is a daily roll-up by provider key, folded per usage batch: rows
// booked before the plugin existed are folded in once by its migration, later rows as they are
// written; only the account's own keys of the reconciled providers count.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store, UsageRecord } from '../../core/spec/store.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_FOLDS } from '../../plugins/reconciliation/schema.ts';
import { sqliteStoreDriver } from '../../plugins/store-sqlite/index.ts';
import { usageRecord } from '../helpers/usage-record.ts';

let directory: string;
let store: Store;

function usage(overrides: Partial<UsageRecord>): UsageRecord {
  return usageRecord({
    accountId: 'acc_a',
    gatewayKeyId: 'key_a',
    providerKeyId: 'pk_1',
    cachedInputTokens: 20,
    latencyMs: 5,
    createdAt: '2026-11-30T23:59:59.000Z',
    ...overrides,
  });
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'keyway-recon-rollup-'));
  store = await sqliteStoreDriver.open(`file:${join(directory, 'keyway.db')}`, { dataDirectory: directory, env: {} });
  await store.migrate([]);
});

afterAll(() => {
  store.close();
  rmSync(directory, { recursive: true, force: true });
});

test('backfilled once, then folded in with each usage batch; platform keys, other providers and unpriced costs left out', async () => {
  await store.insertUsage([usage({}), usage({ createdAt: '2026-12-01T00:00:01.000Z' })]);
  await store.migrate([{ plugin: 'reconciliation', migrations: RECONCILIATION_MIGRATIONS.sqlite ?? [] }]);
  store.setUsageFolds?.([{ plugin: 'reconciliation', tables: RECONCILIATION_USAGE_FOLDS }]);
  await store.insertUsage([
    usage({ createdAt: '2026-12-01T10:00:00.000Z', status: 500, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUsd: 0 }),
    usage({ createdAt: '2026-12-01T11:00:00.000Z', costUsd: null, model: 'gpt-unpriced' }),
    usage({ createdAt: '2026-12-01T12:00:00.000Z', byok: false, providerKeyId: 'pk_platform' }),
    usage({ createdAt: '2026-12-01T12:00:00.000Z', provider: 'google', model: 'gemini-pro' }),
    usage({ createdAt: '2026-12-01T13:00:00.000Z', accountId: 'acc_b' }),
  ]);
  const rows = await store.query('SELECT * FROM reconciliation_usage_daily ORDER BY account_id, day, model');
  expect(rows).toEqual([
    expect.objectContaining({
      account_id: 'acc_a',
      day: '2026-11-30',
      model: 'gpt-4o',
      provider_key_id: 'pk_1',
      requests: 1,
      input_tokens: 100,
      cost_usd: 0.001,
    }),
    expect.objectContaining({
      account_id: 'acc_a',
      day: '2026-12-01',
      model: 'gpt-4o',
      requests: 1,
      input_tokens: 100,
      cached_input_tokens: 20,
      cost_usd: 0.001,
    }),
    expect.objectContaining({ account_id: 'acc_a', day: '2026-12-01', model: 'gpt-unpriced', requests: 1, cost_usd: 0, unpriced_requests: 1 }),
    expect.objectContaining({ account_id: 'acc_b', day: '2026-12-01', model: 'gpt-4o', requests: 1 }),
  ]);
});
