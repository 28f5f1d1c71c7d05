// bun bench/store-postgres.ts — usage batch writes, rows per second: the PostgreSQL store (Bun.SQL,
// one INSERT per batch, its rows unnested from one array per column) against the embedded SQLite store (file, WAL, inline writer), with
// and without the analytics and reconciliation roll-ups folded in each batch; and, on PostgreSQL,
// the alternatives for the insert itself: a multi-row VALUES list (a parameter per cell), and one
// prepared INSERT per row inside the batch's transaction. PostgreSQL at KEYWAY_TEST_POSTGRES_URL or 127.0.0.1:5432.
// Run once (ROWS, BATCH to change the size); figures go to docs/deployment.md, "PostgreSQL".

import { SQL } from 'bun';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store, UsageRecord } from '../core/spec/store.ts';
import { USAGE_FOLD_TABLES } from '../plugins/analytics/batch-fold.ts';
import { ROLLUP_MIGRATIONS, USAGE_ROLLUPS } from '../plugins/analytics/rollup.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_FOLDS, RECONCILIATION_USAGE_ROLLUPS } from '../plugins/reconciliation/schema.ts';
import { postgresStoreDriver } from '../plugins/store-postgres/index.ts';
import { sqliteStoreDriver } from '../plugins/store-sqlite/index.ts';
import { createTestDatabase } from '../test/store-postgres/database.ts';
import { USAGE_COLUMNS } from '../plugins/store-postgres/store.ts';
import { generatedUsageRecord } from '../test/helpers/usage-record.ts';

const ROWS = Number(process.env.ROWS ?? 20_000);
const BATCH = Number(process.env.BATCH ?? 500);

const usageRow = generatedUsageRecord;

const batches = (offset: number): UsageRecord[][] =>
  Array.from({ length: Math.ceil(ROWS / BATCH) }, (_, batch) => Array.from({ length: BATCH }, (_, index) => usageRow(offset + batch * BATCH + index)));

async function timeBatches(write: (rows: UsageRecord[]) => Promise<void>, offset: number): Promise<number> {
  const work = batches(offset);
  await write(work[0] as UsageRecord[]); // warm-up: prepared statements, first pages
  const started = performance.now();
  for (const rows of work.slice(1)) await write(rows);
  return Math.round(((work.length - 1) * BATCH) / ((performance.now() - started) / 1000));
}

/** As the runtime does (core/runtime.ts): folds for a store that takes them, the SQL for one that does not. */
function withRollups(store: Store, dialect: 'sqlite' | 'postgres'): void {
  if (store.setUsageFolds !== undefined) {
    store.setUsageFolds([
      { plugin: 'analytics', tables: USAGE_FOLD_TABLES },
      { plugin: 'reconciliation', tables: RECONCILIATION_USAGE_FOLDS },
    ]);
    return;
  }
  store.setUsageRollups?.([
    { plugin: 'analytics', statements: USAGE_ROLLUPS[dialect] ?? [] },
    { plugin: 'reconciliation', statements: RECONCILIATION_USAGE_ROLLUPS[dialect] ?? [] },
  ]);
}

const plugins = (dialect: 'sqlite' | 'postgres') => [
  { plugin: 'analytics', migrations: ROLLUP_MIGRATIONS[dialect] ?? [] },
  { plugin: 'reconciliation', migrations: RECONCILIATION_MIGRATIONS[dialect] ?? [] },
];

async function sqliteFigures(): Promise<{ plain: number; rollups: number }> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-bench-pg-'));
  try {
    const store = await sqliteStoreDriver.open(`file:${join(directory, 'keyway.db')}`, { dataDirectory: directory, env: { KEYWAY_USAGE_WRITER: 'inline' } });
    await store.migrate(plugins('sqlite'));
    const plain = await timeBatches((rows) => store.insertUsage(rows), 0);
    withRollups(store, 'sqlite');
    const rollups = await timeBatches((rows) => store.insertUsage(rows), 10_000_000);
    store.close();
    return { plain, rollups };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

async function postgresFigures(): Promise<{ plain: number; rollups: number; values: number; perRow: number }> {
  const database = await createTestDatabase();
  const store = await postgresStoreDriver.open(database.url, { dataDirectory: tmpdir(), env: {} });
  const sql = new SQL(database.url, { max: 2 });
  try {
    await store.migrate(plugins('postgres'));
    const plain = await timeBatches((rows) => store.insertUsage(rows), 0);
    const columns = USAGE_COLUMNS.map(([column]) => column).join(', ');
    const values = await timeBatches(async (rows) => {
      const parameters: unknown[] = [];
      const tuples = rows.map(
        (row) =>
          `(${USAGE_COLUMNS.map(([, , read]) => {
            parameters.push(read(row));
            return `$${parameters.length}`;
          }).join(', ')})`,
      );
      await sql.unsafe(`INSERT INTO usage_records (${columns}) VALUES ${tuples.join(', ')}`, parameters);
    }, 20_000_000);
    const rowSql = `INSERT INTO usage_records (${columns}) VALUES (${USAGE_COLUMNS.map((_, index) => `$${index + 1}`).join(', ')})`;
    const perRow = await timeBatches(async (rows) => {
      await sql.begin(async (transaction) => {
        for (const row of rows)
          await transaction.unsafe(
            rowSql,
            USAGE_COLUMNS.map(([, , read]) => read(row)),
          );
      });
    }, 30_000_000);
    withRollups(store, 'postgres');
    const rollups = await timeBatches((rows) => store.insertUsage(rows), 40_000_000);
    return { plain, rollups, values, perRow };
  } finally {
    store.close();
    await sql.close();
    await database.drop();
  }
}

const sqlite = await sqliteFigures();
const postgres = await postgresFigures();
const version = (
  await new SQL(process.env.KEYWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', { max: 1 }).unsafe('SHOW server_version')
)[0];
console.log(`usage batch writes, ${ROWS} rows in batches of ${BATCH}, rows/s (PostgreSQL ${String(version?.server_version)} on localhost; Bun ${Bun.version})`);
console.table({
  'sqlite (file, WAL, inline)': { 'no roll-ups': sqlite.plain, 'with roll-ups': sqlite.rollups },
  'postgres, UNNEST of column arrays (the store)': { 'no roll-ups': postgres.plain, 'with roll-ups': postgres.rollups },
  'postgres, multi-row VALUES': { 'no roll-ups': postgres.values, 'with roll-ups': '—' },
  'postgres, one INSERT per row in a transaction': { 'no roll-ups': postgres.perRow, 'with roll-ups': '—' },
});
process.exit(0);
