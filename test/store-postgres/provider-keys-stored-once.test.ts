// Migration 0013 on PostgreSQL: the same twins as test/store-sqlite/provider-keys-stored-once.test.ts,
// in a database migrated up to 0012, migrate without failing and are marked; a further copy is refused.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { SQL } from 'bun';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POSTGRES_MIGRATIONS } from '../../plugins/store-postgres/migrations.ts';
import { postgresStoreDriver } from '../../plugins/store-postgres/index.ts';
import type { Store } from '../../core/spec/store.ts';
import { ANOTHER_TWIN, TWIN_ACCOUNTS, TWIN_ROWS, TWINS_MIGRATED, UPGRADE } from '../helpers/provider-key-twins.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const reachable = await postgresReachable();
const directory = mkdtempSync(join(tmpdir(), 'keyway-stored-once-pg-'));
let database: TestDatabase | undefined;
let store: Store | undefined;

beforeAll(async () => {
  if (reachable) database = await createTestDatabase();
});

afterAll(async () => {
  store?.close();
  await database?.drop();
  rmSync(directory, { recursive: true, force: true });
});

test.skipIf(!reachable)('keys stored twice before 0013 migrate without failing, marked; a further copy is refused after', async () => {
  const url = (database as TestDatabase).url;
  const before = new SQL(url, { max: 1 });
  // The database as the release before wrote it: every migration before 0013.
  await before.unsafe('CREATE TABLE keyway_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  for (const migration of POSTGRES_MIGRATIONS.filter((entry) => entry.id !== UPGRADE)) {
    for (const statement of migration.statements) await before.unsafe(statement);
    await before.unsafe(`INSERT INTO keyway_migrations (id, applied_at) VALUES ('${migration.id}', 'then')`);
  }
  for (const statement of [...TWIN_ACCOUNTS, ...TWIN_ROWS]) await before.unsafe(statement);
  await before.close();

  store = await postgresStoreDriver.open(url, { dataDirectory: directory, env: {} });
  expect((await store.migrate([])).applied).toEqual([UPGRADE]);
  const rows = await store.query('SELECT id, duplicate_of FROM provider_keys');
  expect(Object.fromEntries(rows.map((row) => [row.id, row.duplicate_of]))).toEqual(TWINS_MIGRATED);

  await expect(store.execute(ANOTHER_TWIN.account)).rejects.toThrow(/unique|duplicate/i);
  await expect(store.execute(ANOTHER_TWIN.platform)).rejects.toThrow(/unique|duplicate/i);
  await store.execute(ANOTHER_TWIN.elsewhere);
  expect(Number((await store.query('SELECT count(*) AS live FROM provider_keys WHERE deleted_at IS NULL'))[0]?.live)).toBe(8);
});
