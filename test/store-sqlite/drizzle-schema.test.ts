// The drizzle tables the SQLite store queries with (plugins/store-sqlite/schema.ts) are not what creates
// the database: the migrations are. So every table drizzle declares must be, in a gateway migrated from
// scratch with every built-in plugin, exactly what drizzle says: the same columns with the same types,
// NOT NULL, defaults and AUTOINCREMENT, the same primary key, indexes, UNIQUE constraints and foreign
// keys. test/store-postgres/schema-parity.test.ts holds PostgreSQL to the same facts. And both stores'
// usage batch inserts, which list their columns by hand for speed, must write every usage column.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { getTableConfig } from 'drizzle-orm/sqlite-core';
import { USAGE_COLUMNS } from '../../plugins/store-postgres/store.ts';
import { schema, usageRecords } from '../../plugins/store-sqlite/schema.ts';
import { USAGE_COLUMN_NAMES } from '../../plugins/store-sqlite/usage-values.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { drizzleSchemaFacts, onlyTables, sqliteSchemaFacts } from '../helpers/schema-facts.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
});

afterAll(async () => {
  await gateway?.stop();
});

test('every table drizzle declares is migrated exactly as declared', async () => {
  const declared = drizzleSchemaFacts(Object.values(schema));
  expect(Object.keys(declared)).toHaveLength(Object.keys(schema).length);
  const migrated = onlyTables(await sqliteSchemaFacts((sql) => gateway.runtime.store.query(sql)), declared);
  expect(migrated).toEqual(declared);
});

test('both stores insert every usage column drizzle declares, bar the id the database assigns', () => {
  const declared = getTableConfig(usageRecords)
    .columns.filter((column) => !column.primary)
    .map((column) => column.name)
    .sort();
  const sqliteColumns: string[] = [...USAGE_COLUMN_NAMES];
  expect(sqliteColumns.sort()).toEqual(declared);
  expect(USAGE_COLUMNS.map(([column]) => column).sort()).toEqual(declared);
});
