// The PostgreSQL store through the store conformance suite, a fresh database per group of tests.

import { describe, test } from 'bun:test';
import { postgresStoreDriver } from '../../plugins/store-postgres/index.ts';
import { describeStoreConformance } from '../conformance/store.ts';
import { createTestDatabase, postgresReachable } from './database.ts';

if (await postgresReachable()) {
  describeStoreConformance('postgres', async () => {
    const database = await createTestDatabase();
    const store = await postgresStoreDriver.open(database.url, { dataDirectory: '/tmp', env: {} });
    return {
      store,
      async cleanup() {
        store.close();
        await database.drop();
      },
    };
  });
} else {
  describe('store conformance: postgres', () => {
    test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): skipped', () => {});
  });
}
