// The in-tree store through the store conformance suite (store.ts): SQLite on a temporary file and
// in memory, both opened through the driver the store plugin registers, as the runtime opens them.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteStoreDriver } from '../../plugins/store-sqlite/index.ts';
import { describeStoreConformance, type OpenedStore } from './store.ts';

async function openSqlite(url: (directory: string) => string): Promise<OpenedStore> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-store-conformance-'));
  const store = await sqliteStoreDriver.open(url(directory), { dataDirectory: directory, env: {} });
  return {
    store,
    cleanup() {
      store.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

describeStoreConformance('sqlite (file)', () => openSqlite((directory) => `file:${join(directory, 'keyway.db')}`));
describeStoreConformance('sqlite (:memory:)', () => openSqlite(() => ':memory:'));
