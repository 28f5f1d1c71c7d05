// The embedded default store: SQLite through Bun's built-in driver (`file:` URLs, no native module,
// so the single binary runs anywhere) or a libSQL server over HTTP (`libsql://`, `http(s)://`).

import type { Logger } from '../../core/logger.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { StoreDriver } from '../../core/spec/store.ts';
import { openStorage } from './database.ts';
import { SqliteStore } from './store.ts';

export { StorageError } from './database.ts';
export { SqliteStore } from './store.ts';

const SCHEMES = /^(file:|:memory:$|(libsql|https?|wss?):\/\/)/;

/** The driver; a `logger` hears that a file database's usage writer thread started (none for tests and benches). */
export function createSqliteStoreDriver(logger?: Logger): StoreDriver {
  return {
    name: 'sqlite',
    accepts: (url) => SCHEMES.test(url),
    open: async (url, options) => new SqliteStore(await openStorage(url, options?.env ?? {}, logger)),
  };
}

export const sqliteStoreDriver: StoreDriver = createSqliteStoreDriver();

export const sqliteStorePlugin = definePlugin({
  name: 'store-sqlite',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'store',
  environment: [
    { name: 'KEYWAY_DATABASE_AUTH_TOKEN', description: 'The libSQL server token' },
    { name: 'KEYWAY_USAGE_WRITER', description: 'inline: write usage on the gateway thread (tests and benches)' },
  ],
  description: 'Embedded SQLite (bun:sqlite) and libSQL over HTTP',
  setup: (context) => ({ store: createSqliteStoreDriver(context.logger) }),
});
