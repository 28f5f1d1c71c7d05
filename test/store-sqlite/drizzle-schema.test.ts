// The drizzle tables the SQLite store queries with (plugins/store-sqlite/schema.ts) are not what creates
// the database: the migrations are. So every table drizzle declares must be, in a gateway migrated from
// scratch with every built-in plugin, exactly what drizzle says: the same columns with the same types,
// NOT NULL, defaults and AUTOINCREMENT, the same primary key, indexes, UNIQUE constraints and foreign
// keys. test/store-postgres/schema-parity.test.ts holds PostgreSQL to the same facts.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { schema } from '../../plugins/store-sqlite/schema.ts';
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
