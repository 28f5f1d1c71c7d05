// The store the embedded plugin builds for a libSQL server (`libsql://`, `http(s)://`), over the
// native libSQL client on a local file instead: no server runs in the test environment, and the
// storage (plugins/store-sqlite/database.ts, libsqlStorage) is the same either way: drizzle's
// libSQL session, the client's batches and interactive transactions.

import { createClient } from '@libsql/client';
import { drizzle } from 'drizzle-orm/libsql';
import { libsqlStorage } from '../../plugins/store-sqlite/database.ts';
import { SqliteStore } from '../../plugins/store-sqlite/store.ts';

export async function openLibsqlFileStore(path: string): Promise<SqliteStore> {
  const client = createClient({ url: `file:${path}` });
  // As a libSQL server keeps its database: a reader's transaction does not hold the writers back.
  await client.execute('PRAGMA journal_mode = WAL');
  return new SqliteStore(libsqlStorage(client, drizzle));
}
