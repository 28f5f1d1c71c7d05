// PostgreSQL storage for several Keyway instances on one database (`postgres://`, `postgresql://`),
// through Bun's built-in SQL client: no native module, so the single binary keeps working
// (docs/deployment.md, "PostgreSQL").

import { SQL } from 'bun';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { StoreDriver } from '../../core/spec/store.ts';
import { integerSetting } from '../../core/spec/settings.ts';

const SCHEMES = /^postgres(ql)?:\/\//;

/** Pool size per instance: KEYWAY_DATABASE_POOL (default 10); 0, 500 or `abc` stop the start (they used to mean 10). */
function poolSize(env: Readonly<Record<string, string | undefined>>): number {
  return integerSetting('KEYWAY_DATABASE_POOL', env.KEYWAY_DATABASE_POOL, 10, 1, 200);
}

export const postgresStoreDriver: StoreDriver = {
  name: 'postgres',
  accepts: (url) => SCHEMES.test(url),
  open: async (url, options) => {
    const sql = new SQL(url, { max: poolSize(options?.env ?? {}), bigint: true, idleTimeout: 30, connectionTimeout: 10 });
    try {
      await sql.unsafe('SELECT 1');
    } catch (error) {
      await sql.close().catch(() => undefined);
      // The URL can hold a password: name only the host.
      const host = (() => {
        try {
          return new URL(url).host;
        } catch {
          return 'the server';
        }
      })();
      throw new Error(`PostgreSQL at ${host} (KEYWAY_DATABASE_URL) could not be reached: ${(error as Error).message}`);
    }
    // Loaded with the first PostgreSQL URL only: a gateway on SQLite never holds the store's modules.
    const { PostgresStore } = await import('./store.ts');
    return new PostgresStore(sql);
  },
};

export const postgresStorePlugin = definePlugin({
  name: 'store-postgres',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'store',
  environment: [{ name: 'KEYWAY_DATABASE_POOL', description: 'Connections per instance' }],
  description: 'PostgreSQL through Bun’s built-in SQL client, for several instances on one database',
  setup: ({ env }) => {
    // Checked at every start, whatever the database, so a bad value is found before the move to PostgreSQL.
    poolSize(env);
    return { store: postgresStoreDriver };
  },
});
