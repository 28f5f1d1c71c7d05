// A database that cannot answer is a retryable 503 storage_unavailable (QA15 cluster #8): the store
// wrapper turns the errors a store plugin classes as "unavailable" into it and leaves the rest alone;
// each built-in store classes its driver's errors; and on the embedded store, a management write that
// meets a file held by another writer past SQLite's busy timeout is answered so, not 500.

import { afterEach, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { join } from 'node:path';
import { KeywayError } from '../../core/errors.ts';
import type { Store } from '../../core/spec/store.ts';
import { STORAGE_RETRY_AFTER_SECONDS, withStorageAvailability } from '../../core/storage-availability.ts';
import { postgresUnavailable } from '../../plugins/store-postgres/unavailable.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

class DriverError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'DriverError';
  }
}

function fakeStore(overrides: Partial<Record<string, unknown>> = {}): Store {
  return {
    driver: 'fake',
    dialect: 'sqlite',
    isUnavailable: (error: unknown) => error instanceof DriverError && error.code === 'GONE',
    ping: async () => {
      throw new DriverError('connection refused', 'GONE');
    },
    listAccounts: async () => {
      throw new DriverError('syntax error', 'SYNTAX');
    },
    close: () => {
      throw new DriverError('sync and gone', 'GONE');
    },
    setUsageFolds: () => 'kept',
    ...overrides,
  } as unknown as Store;
}

describe('withStorageAvailability', () => {
  test('an error the store classes as unavailable becomes storage_unavailable with Retry-After, its cause kept', async () => {
    const store = withStorageAvailability(fakeStore());
    const error = await store.ping().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KeywayError);
    const descriptor = (error as KeywayError).toDescriptor('req_1');
    expect({ status: descriptor.status, code: descriptor.code, retryAfter: descriptor.retryAfterSeconds }).toEqual({
      status: 503,
      code: 'storage_unavailable',
      retryAfter: STORAGE_RETRY_AFTER_SECONDS,
    });
    expect(descriptor.message).not.toMatch(/DriverError|refused/);
    expect(((error as Error).cause as Error).message).toBe('connection refused');
  });

  test('other errors, synchronous throws of unavailable errors, values and plain properties', async () => {
    const store = withStorageAvailability(fakeStore());
    await expect(store.listAccounts()).rejects.toThrow('syntax error');
    expect(() => store.close()).toThrow(KeywayError);
    expect((store.setUsageFolds as unknown as () => string)()).toBe('kept');
    expect(store.driver).toBe('fake');
    expect(store.insertJournalRange).toBeUndefined();
  });

  test('a method replaced on the store is wrapped too; a store that classes nothing is returned as it is', async () => {
    const store = withStorageAvailability(fakeStore());
    store.listAccounts = async () => {
      throw new DriverError('gone now', 'GONE');
    };
    await expect(store.listAccounts()).rejects.toBeInstanceOf(KeywayError);
    const plain = fakeStore({ isUnavailable: undefined });
    expect(withStorageAvailability(plain)).toBe(plain);
  });
});

describe("the stores' own classification", () => {
  const postgresError = (fields: Record<string, unknown>) => Object.assign(new Error('x'), { name: 'PostgresError' }, fields);

  test('PostgreSQL: a connection refused, closed or cut by the server is unavailable; a query fault is not', () => {
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_CONNECTION_REFUSED' }))).toBe(true);
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_CONNECTION_CLOSED' }))).toBe(true);
    // pg_terminate_backend, then a database that takes no connections (ALTER DATABASE … ALLOW_CONNECTIONS false).
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_SERVER_ERROR', errno: '57P01', severity: 'FATAL' }))).toBe(true);
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_SERVER_ERROR', errno: '55000', severity: 'FATAL' }))).toBe(true);
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_SERVER_ERROR', errno: '08006', severity: 'ERROR' }))).toBe(true);
    expect(postgresUnavailable(new Error('wrapped', { cause: postgresError({ code: 'ERR_POSTGRES_CONNECTION_TIMEOUT' }) }))).toBe(true);
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_SERVER_ERROR', errno: '42601', severity: 'ERROR' }))).toBe(false);
    expect(postgresUnavailable(postgresError({ code: 'ERR_POSTGRES_SERVER_ERROR', errno: '23505', severity: 'ERROR' }))).toBe(false);
    expect(postgresUnavailable(new Error('plain'))).toBe(false);
  });
});

describe('the embedded store busy past its timeout', () => {
  let gateway: TestGateway | undefined;
  let holder: Database | undefined;
  afterEach(async () => {
    holder?.close();
    holder = undefined;
    await gateway?.stop();
    gateway = undefined;
  });

  test('a management write meets SQLITE_BUSY: 503 storage_unavailable with Retry-After, not 500', async () => {
    gateway = await startTestGateway({ probes: false });
    const store = gateway.runtime.store;
    expect(store.isUnavailable?.(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))).toBe(true);
    expect(store.isUnavailable?.(Object.assign(new Error('no such table'), { code: 'SQLITE_ERROR' }))).toBe(false);
    // Another writer holds the file's write lock for longer than the gateway's busy_timeout (5 s).
    holder = new Database(join(gateway.dataDirectory, 'keyway.db'));
    holder.exec('BEGIN IMMEDIATE');
    const response = await call(gateway, 'POST', '/v1/keys', { name: 'while the file is held', role: 'developer' });
    const text = await response.text();
    expect({
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      code: (JSON.parse(text) as { error: { code: string } }).error.code,
    }).toEqual({
      status: 503,
      retryAfter: '5',
      code: 'storage_unavailable',
    });
    expect(text).not.toMatch(/SQLite|locked|internal_error/);
    holder.exec('ROLLBACK');
    const retried = await call(gateway, 'POST', '/v1/keys', { name: 'once the file is free', role: 'developer' });
    expect(retried.status).toBe(201);
  }, 20_000);
});
