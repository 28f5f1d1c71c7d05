// The roll-ups a store sums from each batch (usage folds, core/spec/usage-fold.ts) hold what the SQL
// says they hold: every table, after batches of rows of every kind, equals the same rows grouped by
// SQL — the metrics' own expressions (summary-tables.ts) and the backfills the plugins' migrations run.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store, UsageRecord } from '../../core/spec/store.ts';
import { USAGE_FOLD_TABLES } from '../../plugins/analytics/batch-fold.ts';
import { ROLLUP_MIGRATIONS } from '../../plugins/analytics/rollup.ts';
import { BUCKET_LENGTH, METRICS, metricExpression, SUMMARY_TABLES, summaryKeyColumns } from '../../plugins/analytics/summary-tables.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_FOLDS } from '../../plugins/reconciliation/schema.ts';
import { sqliteStoreDriver } from '../../plugins/store-sqlite/index.ts';
import { usageRecord } from '../helpers/usage-record.ts';

const directories: string[] = [];
const stores: Store[] = [];

async function openStore(env: Record<string, string>): Promise<Store> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-usage-folds-'));
  directories.push(directory);
  const store = await sqliteStoreDriver.open(`file:${join(directory, 'keyway.db')}`, { dataDirectory: directory, env });
  stores.push(store);
  await store.migrate([]);
  return store;
}

const PLUGIN_MIGRATIONS = [
  { plugin: 'analytics', migrations: ROLLUP_MIGRATIONS.sqlite ?? [] },
  { plugin: 'reconciliation', migrations: RECONCILIATION_MIGRATIONS.sqlite ?? [] },
];

/** Rows of every kind the metrics tell apart, over two days and three accounts. */
function rowsOfEveryKind(count: number): UsageRecord[] {
  return Array.from({ length: count }, (_, index) =>
    usageRecord({
      requestId: `req_fold_${index}`,
      accountId: `acc_${index % 3}`,
      gatewayKeyId: `key_${index % 4}`,
      teamId: index % 5 === 0 ? null : `team_${index % 2}`,
      projectTag: index % 3 === 0 ? 'checkout' : null,
      provider: index % 11 === 0 ? null : index % 7 === 0 ? 'google' : index % 2 === 0 ? 'openai' : 'anthropic',
      model: index % 11 === 0 ? null : index % 4 === 0 ? 'gpt-4o' : 'claude-sonnet',
      providerKeyId: index % 13 === 0 ? null : `pk_${index % 3}`,
      byok: index % 3 !== 1,
      status: [200, 200, 200, 400, 429, 500, 499][index % 7] as number,
      inputTokens: 100 + index,
      outputTokens: index % 9,
      cachedInputTokens: index % 4,
      cacheWriteTokens: index % 6,
      ...(index % 8 === 0 ? {} : { cacheWrite1hTokens: index % 5 }),
      reasoningTokens: index % 3,
      costUsd: index % 10 === 0 ? null : ([0.1, 0.2, 1e-12, 0.000123, 3][index % 5] as number),
      latencyMs: 0.5 + (index % 17) * 1.1,
      fallbackAttempts: index % 6 === 0 ? 2 : 0,
      createdAt: new Date(Date.UTC(2026, 10, 30, 20, 0, 0) + index * 97_000).toISOString(),
    }),
  );
}

const ROWS = rowsOfEveryKind(600);
let folded: Store;
let backfilled: Store;

beforeAll(async () => {
  // Summed by the store, batch by batch, on the writer thread and on the gateway's.
  folded = await openStore({});
  await folded.migrate(PLUGIN_MIGRATIONS);
  folded.setUsageFolds?.([
    { plugin: 'analytics', tables: USAGE_FOLD_TABLES },
    { plugin: 'reconciliation', tables: RECONCILIATION_USAGE_FOLDS },
  ]);
  await folded.migrate([{ plugin: 'notes', migrations: [{ id: '0001', statements: ['CREATE TABLE fold_test_notes (body TEXT NOT NULL)'] }] }]);
  await folded.insertUsage(ROWS.slice(0, 250));
  // Rows a plugin appends to its own table between usage batches are not usage: they are not folded, and the folds stay.
  await folded.appendRows?.('fold_test_notes', ['body'], [['between batches']]);
  await folded.insertUsage(ROWS.slice(250, 251));
  await folded.appendRows?.('fold_test_notes', ['body'], [['again']]);
  await folded.insertUsage(ROWS.slice(251));
  // Grouped by SQL: the rows first, then the migrations, whose backfills group them.
  backfilled = await openStore({ KEYWAY_USAGE_WRITER: 'inline' });
  await backfilled.insertUsage(ROWS);
  await backfilled.migrate(PLUGIN_MIGRATIONS);
});

afterAll(() => {
  for (const store of stores.splice(0)) store.close();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** A table's rows in key order, sums rounded far below a cent so that only the order of additions may differ. */
async function table(store: Store, sql: string): Promise<Array<Record<string, unknown>>> {
  const rows = await store.query(sql);
  return rows.map((row) =>
    Object.fromEntries(Object.entries(row).map(([column, value]) => [column, typeof value === 'number' ? Number(value.toPrecision(12)) : value])),
  );
}

test('the store takes folds', () => {
  expect(folded.setUsageFolds).toBeFunction();
});

test('the hourly roll-up and the reconciliation daily table equal what their migrations group from the same rows', async () => {
  for (const [name, keys] of [
    ['usage_rollup_hourly', 8],
    ['reconciliation_usage_daily', 5],
  ] as const) {
    const sql = `SELECT * FROM ${name} ORDER BY ${Array.from({ length: keys }, (_, index) => index + 1).join(', ')}`;
    const expected = await table(backfilled, sql);
    expect(expected.length).toBeGreaterThan(20);
    expect(await table(folded, sql)).toEqual(expected);
  }
});

test('every summary table equals the rows grouped by SQL with each metric’s own expression', async () => {
  for (const summary of SUMMARY_TABLES) {
    const keys = summaryKeyColumns(summary);
    const keyValues = [
      'account_id',
      `substr(created_at, 1, ${BUCKET_LENGTH[summary.grain]})`,
      ...summary.dimensions.map(([, expression]) => expression.replaceAll('$.', '')),
    ];
    const expected = await table(
      backfilled,
      `SELECT ${keyValues.map((value, index) => `${value} AS ${keys[index]}`).join(', ')}, ${METRICS.map((metric) => `SUM(${metricExpression(metric, '')}) AS ${metric.column}`).join(', ')}
       FROM usage_records GROUP BY ${keys.map((_, index) => index + 1).join(', ')} ORDER BY ${keys.map((_, index) => index + 1).join(', ')}`,
    );
    expect(expected.length).toBeGreaterThan(3);
    const actual = await table(
      folded,
      `SELECT ${[...keys, ...METRICS.map(({ column }) => column)].join(', ')} FROM ${summary.name} ORDER BY ${keys.join(', ')}`,
    );
    expect({ table: summary.name, rows: actual }).toEqual({ table: summary.name, rows: expected });
  }
});

test('analytics totals are the sums of the usage rows', async () => {
  const [total] = await folded.query(
    'SELECT SUM(requests) AS requests, SUM(input_tokens) AS input_tokens, SUM(unpriced_requests) AS unpriced FROM usage_summary_hourly',
  );
  expect(total).toEqual({
    requests: ROWS.length,
    input_tokens: ROWS.reduce((sum, row) => sum + row.inputTokens, 0),
    unpriced: ROWS.filter((row) => row.provider !== null && row.costUsd === null).length,
  });
});
