// The instance lease's connection to a libSQL server (core/process/instance-lease.ts): the same HTTP
// client and token as the store's, opened by the entry point before the store, and its own.

import type { LeaseConnection } from '../../core/spec/instance-lease.ts';
import { libsqlClient } from './database.ts';

export async function libsqlLeaseConnection(url: string): Promise<LeaseConnection> {
  const client = await libsqlClient(url);
  return {
    dialect: 'sqlite',
    query: async (sql, parameters) =>
      (await client.execute({ sql, args: parameters as Array<string | number | null> })).rows as unknown as Array<Record<string, unknown>>,
    close: async () => client.close(),
  };
}
