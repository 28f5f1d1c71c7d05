// The instance lease's connection to PostgreSQL (core/process/instance-lease.ts): one connection of
// Bun's client, opened by the entry point before the store's pool, and its own.

import { SQL } from 'bun';
import type { LeaseConnection } from '../../core/spec/instance-lease.ts';
import { toPostgresPlaceholders } from './placeholders.ts';

export async function postgresLeaseConnection(url: string): Promise<LeaseConnection> {
  const sql = new SQL(url, { max: 1, bigint: true, idleTimeout: 30, connectionTimeout: 10 });
  return {
    dialect: 'postgres',
    query: async (text, parameters) => (await sql.unsafe(toPostgresPlaceholders(text), [...parameters])) as Array<Record<string, unknown>>,
    close: () => sql.close(),
  };
}
