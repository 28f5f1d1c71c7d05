// The two dialects' migration lists cannot drift: a gateway on SQLite and one on PostgreSQL, each with
// every built-in plugin's migrations applied, must have the same tables with the same columns of the
// matching types (TEXT ↔ text, INTEGER ↔ bigint, REAL ↔ double precision), bar the columns PostgreSQL
// adds for SQLite's implicit rowid, and the same applied migration ids.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

/** Columns PostgreSQL has in place of SQLite's rowid (ordering and re-wrap walks). */
const POSTGRES_ROWID_STANDINS = new Set(['provider_keys.position', 'teams.rowid', 'team_members.rowid']);
const TYPES: Readonly<Record<string, string>> = { TEXT: 'text', INTEGER: 'bigint', REAL: 'double precision', '': 'text' };
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 11 + 5)).toString('base64');

type Schema = Map<string, string>;

async function sqliteSchema(gateway: TestGateway): Promise<Schema> {
  const rows = await gateway.runtime.store.query(
    `SELECT m.name AS table_name, p.name AS column_name, p.type AS type FROM sqlite_master m JOIN pragma_table_info(m.name) p
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`,
  );
  return new Map(rows.map((row) => [`${row.table_name}.${row.column_name}`, TYPES[String(row.type).toUpperCase()] ?? String(row.type)]));
}

async function postgresSchema(gateway: TestGateway): Promise<Schema> {
  const rows = await gateway.runtime.store.query(`SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'`);
  return new Map(
    rows.map((row) => [`${row.table_name}.${row.column_name}`, String(row.data_type)] as const).filter(([column]) => !POSTGRES_ROWID_STANDINS.has(column)),
  );
}

const reachable = await postgresReachable();

describe.skipIf(!reachable)('schema parity: sqlite and postgres', () => {
  let sqlite: TestGateway;
  let postgres: TestGateway;
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
    sqlite = await startTestGateway({ probes: false, env: { KEYWAY_DATABASE_URL: ':memory:', KEYWAY_MASTER_KEY: MASTER_KEY } });
    postgres = await startTestGateway({ probes: false, env: { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY } });
  });

  afterAll(async () => {
    await sqlite?.stop();
    await postgres?.stop();
    await database?.drop();
  });

  test('the same tables and columns, with matching types', async () => {
    const left = Object.fromEntries([...(await sqliteSchema(sqlite))].sort());
    const right = Object.fromEntries([...(await postgresSchema(postgres))].sort());
    expect(Object.keys(left).length).toBeGreaterThan(100);
    expect(right).toEqual(left);
  });

  test('the same migrations are recorded', async () => {
    const ids = async (gateway: TestGateway) =>
      (await gateway.runtime.store.query('SELECT id FROM keyway_migrations ORDER BY id')).map((row) => String(row.id));
    const postgresOnly = (await ids(postgres)).filter((id) => !id.endsWith('_postgres_rowid'));
    expect(postgresOnly).toEqual(await ids(sqlite));
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): schema parity skipped', () => {});
