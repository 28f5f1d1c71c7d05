// The two dialects' migration lists cannot drift: a gateway on SQLite and one on PostgreSQL, each with
// every built-in plugin's migrations applied, must have the same tables with the same columns of the
// matching types (TEXT ↔ text, INTEGER ↔ bigint, REAL ↔ double precision), NOT NULL, defaults and
// identities, the same primary keys, indexes (name, columns, uniqueness, WHERE), UNIQUE constraints and
// foreign keys, bar the columns PostgreSQL adds for SQLite's implicit rowid, and the same applied
// migration ids. The core tables must also be what drizzle declares (plugins/store-sqlite/schema.ts),
// which test/store-sqlite/drizzle-schema.test.ts checks for SQLite and the last test here for PostgreSQL.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { schema } from '../../plugins/store-sqlite/schema.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { drizzleSchemaFacts, onlyTables, postgresSchemaFacts, type SchemaFacts, sqliteSchemaFacts } from '../helpers/schema-facts.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 11 + 5)).toString('base64');

function columnCount(facts: SchemaFacts): number {
  return Object.values(facts).reduce((sum, table) => sum + Object.keys(table.columns).length, 0);
}

function indexCount(facts: SchemaFacts): number {
  return Object.values(facts).reduce((sum, table) => sum + Object.keys(table.indexes).length, 0);
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

  test('the same tables, columns, keys and indexes', async () => {
    const left = await sqliteSchemaFacts((sql) => sqlite.runtime.store.query(sql));
    const right = await postgresSchemaFacts((sql) => postgres.runtime.store.query(sql));
    expect(columnCount(left)).toBeGreaterThan(100);
    expect(indexCount(left)).toBeGreaterThan(10);
    expect(right).toEqual(left);
  });

  test('the same migrations are recorded', async () => {
    const ids = async (gateway: TestGateway) =>
      (await gateway.runtime.store.query('SELECT id FROM keyway_migrations ORDER BY id')).map((row) => String(row.id));
    const postgresOnly = (await ids(postgres)).filter((id) => !id.endsWith('_postgres_rowid'));
    expect(postgresOnly).toEqual(await ids(sqlite));
  });

  test('every table drizzle declares is migrated in PostgreSQL exactly as declared', async () => {
    const declared = drizzleSchemaFacts(Object.values(schema));
    const migrated = onlyTables(await postgresSchemaFacts((sql) => postgres.runtime.store.query(sql)), declared);
    expect(migrated).toEqual(declared);
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): schema parity skipped', () => {});
