// Which instance lease a start takes (core/process/instance-lease.ts): on a database served over the
// network, a libSQL server or PostgreSQL, the instance lease, or with KEYWAY_REDIS_URL (shared counters)
// the shared-counters lease, which lets any number of such instances in and keeps one without Redis out.
// The embedded file has its kernel lock instead (store-sqlite/instance-lock.ts). A URL of another
// scheme, which an out-of-tree store plugin accepts, takes none: its plugin knows what it shares.

import type { GatewayConfig } from '../core/config.ts';
import {
  holdInstanceLease,
  holdSharedCountersLease,
  InstanceLeaseError,
  type InstanceLease,
  type LeaseConnection,
  type LeaseLogger,
} from '../core/process/instance-lease.ts';
import { StorageError } from './store-sqlite/storage-error.ts';

const LIBSQL_SERVER = /^(libsql|https?|wss?):\/\//;
const POSTGRES = /^postgres(ql)?:\/\//;

/** The URL can hold a password: only its host is ever named. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the server';
  }
}

export async function holdDatabaseInstanceLease(config: GatewayConfig, logger: LeaseLogger): Promise<InstanceLease | undefined> {
  const url = config.databaseUrl;
  let where: string;
  let open: () => Promise<LeaseConnection>;
  if (LIBSQL_SERVER.test(url)) {
    where = `the libSQL server at ${hostOf(url)}`;
    open = async () => (await import('./store-sqlite/lease-connection.ts')).libsqlLeaseConnection(url);
  } else if (POSTGRES.test(url)) {
    where = `PostgreSQL at ${hostOf(url)}`;
    open = async () => (await import('./store-postgres/lease-connection.ts')).postgresLeaseConnection(url);
  } else {
    return undefined;
  }
  try {
    const hold = config.redisUrl === undefined ? holdInstanceLease : holdSharedCountersLease;
    return await hold(await open(), { ttlMs: config.instanceLeaseMs, where, logger });
  } catch (error) {
    if (error instanceof InstanceLeaseError) throw error;
    const password = (() => {
      try {
        return decodeURIComponent(new URL(url).password);
      } catch {
        return '';
      }
    })();
    const message = error instanceof Error ? error.message : String(error);
    throw new StorageError(`${where} (KEYWAY_DATABASE_URL) could not be reached: ${password === '' ? message : message.split(password).join('[redacted]')}`);
  }
}
