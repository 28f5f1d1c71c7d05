// The instance lease (core/process/instance-lease.ts) on its own, against the SQL it runs: on an SQLite
// file through bun:sqlite (the dialect a libSQL server speaks) and on PostgreSQL when one is reachable.
// Several "instances" here are several holders in one test process, each with its own connection.
// test/process/instance-lease-processes.test.ts starts the real entry point on a libSQL server and on
// PostgreSQL.

import { afterAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  holdInstanceLease,
  holdSharedCountersLease,
  InstanceLeaseError,
  LEASE_TABLE,
  type LeaseConnection,
  type LeaseLogger,
} from '../../core/process/instance-lease.ts';
import { postgresLeaseConnection } from '../../plugins/store-postgres/lease-connection.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';

const scratch = mkdtempSync(join(tmpdir(), 'keyway-lease-'));
const databases: TestDatabase[] = [];

afterAll(async () => {
  rmSync(scratch, { recursive: true, force: true });
  for (const database of databases) await database.drop();
});

/** One connection to the SQLite file, as a libSQL client's would be to its server. */
function sqliteConnection(path: string): LeaseConnection & { closed: () => boolean } {
  const database = new Database(path, { create: true });
  database.exec('PRAGMA busy_timeout = 2000');
  let closed = false;
  return {
    dialect: 'sqlite',
    query: async (sql, parameters) => database.prepare(sql).all(...(parameters as never[])) as Array<Record<string, unknown>>,
    close: async () => {
      closed = true;
      database.close();
    },
    closed: () => closed,
  };
}

interface Logged {
  level: 'warn' | 'error';
  message: string;
}

function recordingLogger(): LeaseLogger & { lines: Logged[] } {
  const lines: Logged[] = [];
  return {
    lines,
    warn: (_fields, message) => lines.push({ level: 'warn', message }),
    error: (_fields, message) => lines.push({ level: 'error', message }),
  };
}

const WHERE = 'the libSQL server at db.test:8080';

async function refusalOf(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught as Error,
  );
  if (error === undefined) throw new Error('the lease was taken, not refused');
  return error;
}

interface Dialect {
  name: string;
  skip: boolean;
  connect(): Promise<LeaseConnection>;
}

const postgres = await postgresReachable();
let postgresUrl: string | undefined;
const dialects: Dialect[] = [
  {
    name: 'SQLite / libSQL',
    skip: false,
    connect: async () => sqliteConnection(join(scratch, 'shared.db')),
  },
  {
    name: 'PostgreSQL',
    skip: !postgres,
    connect: async () => {
      if (postgresUrl === undefined) {
        const database = await createTestDatabase();
        databases.push(database);
        postgresUrl = database.url;
      }
      return postgresLeaseConnection(postgresUrl);
    },
  },
];

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`the instance lease on ${dialect.name}`, () => {
    test('a second holder is refused while the first renews, past several lease lengths, naming the first', async () => {
      const first = await holdInstanceLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger(), described: 'host a, pid 1' });
      try {
        await Bun.sleep(1_000);
        const error = await refusalOf(holdInstanceLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger() }));
        expect(error).toBeInstanceOf(InstanceLeaseError);
        expect(error.message).toMatch(
          /^the libSQL server at db\.test:8080 \(KEYWAY_DATABASE_URL\) is in use by another Keyway instance \(host a, pid 1\), whose lease on it runs 1 s more/,
        );
        expect(error.message).toContain('KEYWAY_REDIS_URL');
      } finally {
        await first.release();
      }
    });

    test('a stopped holder gives the lease back at once', async () => {
      const first = await holdInstanceLease(await dialect.connect(), { ttlMs: 60_000, where: WHERE, logger: recordingLogger() });
      await first.release();
      const second = await holdInstanceLease(await dialect.connect(), { ttlMs: 60_000, where: WHERE, logger: recordingLogger() });
      await second.release();
    });

    test('a holder that died (no renewal, no release) blocks the next start for the lease length only', async () => {
      const connection = await dialect.connect();
      const dead = await holdInstanceLease(connection, { ttlMs: 1_000, where: WHERE, logger: recordingLogger(), described: 'the dead one' });
      // Dies: its renewals stop and its connection is gone, the row stays behind.
      await stopRenewingWithoutRelease(connection, dead);
      await expect(holdInstanceLease(await dialect.connect(), { ttlMs: 1_000, where: WHERE, logger: recordingLogger() })).rejects.toThrow(/the dead one/);
      await Bun.sleep(1_100);
      const next = await holdInstanceLease(await dialect.connect(), { ttlMs: 1_000, where: WHERE, logger: recordingLogger() });
      await next.release();
    });

    test('a holder that stalled past its lease and lost it says so once, in one error line', async () => {
      const logger = recordingLogger();
      const connection = await dialect.connect();
      const stalled = await holdInstanceLease(connection, { ttlMs: 300, where: WHERE, logger });
      const other = await dialect.connect();
      // Another instance takes the row over as if the first had stalled past its lease.
      await other.query(`UPDATE ${LEASE_TABLE} SET holder = 'someone else', described = 'the other one', expires_at = expires_at + 60000`, []);
      await Bun.sleep(700);
      expect(logger.lines.filter((line) => line.level === 'error')).toEqual([
        {
          level: 'error',
          message:
            'instance lease lost to another Keyway instance: both now serve this database without shared counters; stop one, or set KEYWAY_REDIS_URL on both',
        },
      ]);
      await stalled.release();
      // Its release leaves the other's row alone.
      expect(await other.query(`SELECT holder FROM ${LEASE_TABLE}`, [])).toEqual([{ holder: 'someone else' }]);
      await other.query(`DELETE FROM ${LEASE_TABLE}`, []);
      await other.close();
    });

    test('an instance without shared counters is refused while instances sharing them through Redis serve, naming the last to renew', async () => {
      const shared = await holdSharedCountersLease(await dialect.connect(), {
        ttlMs: 300,
        where: WHERE,
        logger: recordingLogger(),
        described: 'host r, pid 7',
      });
      const other = await holdSharedCountersLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger(), described: 'host s, pid 8' });
      try {
        await Bun.sleep(700);
        const error = await refusalOf(holdInstanceLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger() }));
        expect(error).toBeInstanceOf(InstanceLeaseError);
        expect(error.message).toMatch(
          /^the libSQL server at db\.test:8080 \(KEYWAY_DATABASE_URL\) is in use by Keyway instances that share their counters through Redis \(the last to renew: host [rs], pid [78]\)/,
        );
        expect(error.message).toContain('set the same KEYWAY_REDIS_URL');
      } finally {
        await shared.release();
        await other.release();
      }
      // The refused start left no lease of its own behind, and the shared one runs out once nobody renews it.
      await Bun.sleep(400);
      const alone = await holdInstanceLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger() });
      await alone.release();
    });

    test('an instance with Redis is refused while an instance without shared counters holds the lease', async () => {
      const alone = await holdInstanceLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger(), described: 'host a, pid 1' });
      try {
        await Bun.sleep(700);
        const error = await refusalOf(holdSharedCountersLease(await dialect.connect(), { ttlMs: 300, where: WHERE, logger: recordingLogger() }));
        expect(error).toBeInstanceOf(InstanceLeaseError);
        expect(error.message).toMatch(
          /^the libSQL server at db\.test:8080 \(KEYWAY_DATABASE_URL\) is in use by a Keyway instance without shared counters \(host a, pid 1\), whose lease on it runs 1 s more/,
        );
        expect(error.message).toContain('KEYWAY_REDIS_URL');
      } finally {
        await alone.release();
      }
      const cleanup = await dialect.connect();
      await cleanup.query(`DELETE FROM ${LEASE_TABLE}`, []);
      await cleanup.close();
    });
  });
}

// QA20 ops: instances with Redis now take the shared-counters lease, so a first rollout of several
// replicas creates the lease table from several connections at once, and PostgreSQL's CREATE TABLE IF
// NOT EXISTS is not safe against itself (`duplicate key value violates unique constraint
// "pg_type_typname_nsp_index"`). Every replica must start.
describe.skipIf(!postgres)('instances with Redis starting at once on a fresh PostgreSQL database', () => {
  test('all take the shared-counters lease, round after round', async () => {
    const failures: string[] = [];
    for (let round = 0; round < 5; round += 1) {
      const database = await createTestDatabase();
      databases.push(database);
      const taken = await Promise.allSettled(
        [0, 1, 2].map(async () =>
          holdSharedCountersLease(await postgresLeaseConnection(database.url), { ttlMs: 5_000, where: WHERE, logger: recordingLogger() }),
        ),
      );
      for (const result of taken) {
        if (result.status === 'rejected') failures.push(String(result.reason));
        else await result.value.release();
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);
});

/** What SIGKILL does to a holder: the renewals stop and nothing deletes the row. */
async function stopRenewingWithoutRelease(connection: LeaseConnection, lease: { release(): Promise<void> }): Promise<void> {
  const keep = connection.query.bind(connection);
  // The release's DELETE is the one statement that must not reach the database.
  connection.query = async (sql, parameters) => (sql.startsWith('DELETE') ? [] : keep(sql, parameters));
  await lease.release();
}
