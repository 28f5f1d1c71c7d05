// One Keyway instance per database served over the network unless the instances share counters
// (core/process/instance-lease.ts, QA18): the real entry point on a libSQL server and on PostgreSQL.
// Without KEYWAY_REDIS_URL a second start is refused in one line naming the first, which keeps
// serving; a stopped instance gives the lease back at once; one SIGKILLed blocks the next start for
// the lease's length only; with KEYWAY_REDIS_URL several instances start. Before QA18 nothing stopped
// a second instance on a libSQL server, and the two drifted apart (budgets spent twice).
//
// No libSQL server (sqld) is installed here: test/helpers/libsql-server.ts stands in for one (the
// Hrana HTTP protocol the libSQL client speaks, on an SQLite file), so the client, its requests and
// the SQL are the real ones; only the server is not.

import { afterAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { generateMasterKey } from '../../plugins/crypto-local/master-key.ts';
import { redisReachable, TEST_REDIS_URL } from '../counters-redis/redis.ts';
import { startFakeLibsqlServer, type FakeLibsqlServer } from '../helpers/libsql-server.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';
import { FROM_SOURCE, runUntilExit, simulatorAndScratch, startGatewayProcess, type FinishedProcess, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-InstanceLeaseUpstreamKey00000000001';
const OPERATOR_KEY = 'kw_op_InstanceLeaseOperatorKey0123456789abc';
const MASTER_KEY = generateMasterKey();
const LEASE_MS = 2_000;

const suite = simulatorAndScratch(UPSTREAM_KEY);
const servers: FakeLibsqlServer[] = [];
const databases: TestDatabase[] = [];
const running: GatewayProcess[] = [];

afterAll(async () => {
  for (const gateway of running) if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
  for (const server of servers) await server.stop();
  for (const database of databases) await database.drop();
});

function environment(directory: string, databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYWAY_DATA_DIR: directory,
    KEYWAY_DATABASE_URL: databaseUrl,
    KEYWAY_MASTER_KEY: MASTER_KEY,
    KEYWAY_ADMIN_KEY: OPERATOR_KEY,
    KEYWAY_OPENAI_BASE_URL: `${suite.simulator.url}/v1`,
    KEYWAY_INSTANCE_LEASE_MS: String(LEASE_MS),
    ...extra,
  };
}

async function start(name: string, databaseUrl: string, extra: Record<string, string> = {}): Promise<GatewayProcess> {
  const directory = suite.dataDirectory(name);
  const gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment(directory, databaseUrl, extra) });
  running.push(gateway);
  return gateway;
}

function refusedStart(name: string, databaseUrl: string): Promise<FinishedProcess> {
  const directory = suite.dataDirectory(name);
  return runUntilExit({ command: FROM_SOURCE, cwd: directory, env: environment(directory, databaseUrl) }, 15_000);
}

function expectRefusedFor(result: FinishedProcess, where: RegExp, holderPid: number): void {
  expect({ exitCode: result.exitCode, stderr: result.stderr }).toMatchObject({ exitCode: 1, stderr: expect.stringMatching(/^keyway: cannot start: /) });
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(where);
  expect(result.stderr).toMatch(
    new RegExp(`is in use by another Keyway instance \\(host [^,]+, pid ${holderPid}, started [^)]+\\), whose lease on it runs \\d+ s more`),
  );
  expect(result.stderr).toContain('KEYWAY_REDIS_URL');
  expect(result.stdout).not.toContain('Keyway listening');
}

async function ready(gateway: GatewayProcess): Promise<number> {
  return (await fetch(`${gateway.url}/ready`)).status;
}

function libsqlServer(name: string): FakeLibsqlServer {
  const server = startFakeLibsqlServer(join(suite.dataDirectory(name), 'server.db'));
  servers.push(server);
  return server;
}

const LIBSQL_WHERE = /^keyway: cannot start: the libSQL server at 127\.0\.0\.1:\d+ \(KEYWAY_DATABASE_URL\) is in use/;

describe('on a libSQL server', () => {
  test('a second start is refused naming the first (which serves with two workers); a stopped one gives the lease back at once', async () => {
    const server = libsqlServer('libsql-stop');
    // The primary holds the lease for its workers: they are one instance and share its counters.
    const first = await start('libsql-stop-first', server.url, { KEYWAY_WORKERS: '2' });
    expectRefusedFor(await refusedStart('libsql-stop-second', server.url), LIBSQL_WHERE, first.process.pid);
    expect(await ready(first)).toBe(200);
    expect(await first.stop('SIGTERM')).toBe(0);
    // Given back on the way out: the next start need not wait for the lease to run out.
    const next = await start('libsql-stop-next', server.url);
    expect(await ready(next)).toBe(200);
    expect(await next.stop('SIGTERM')).toBe(0);
  }, 90_000);

  test('an instance SIGKILLed blocks the next start for the lease length only', async () => {
    const server = libsqlServer('libsql-kill');
    const killed = await start('libsql-kill-first', server.url);
    killed.process.kill('SIGKILL');
    await killed.waitForExit();
    const killedAt = performance.now();
    expectRefusedFor(await refusedStart('libsql-kill-early', server.url), LIBSQL_WHERE, killed.process.pid);
    let next: GatewayProcess | undefined;
    while (next === undefined && performance.now() - killedAt < LEASE_MS + 10_000) {
      next = await start('libsql-kill-next', server.url).catch(() => undefined);
    }
    expect(next).toBeDefined();
    // A start takes a second or so here: the lease ran out within its 2 s, not at some later sweep.
    expect(performance.now() - killedAt).toBeLessThan(LEASE_MS + 6_000);
    expect(await (next as GatewayProcess).stop('SIGTERM')).toBe(0);
  }, 90_000);
});

const postgres = await postgresReachable();
const redis = await redisReachable();
if (!postgres) console.warn('PostgreSQL is not reachable on 127.0.0.1:5432: the PostgreSQL lease tests are skipped');
if (!redis) console.warn('Redis is not reachable: the tests of several instances with shared counters are skipped');

describe.skipIf(!postgres)('on PostgreSQL', () => {
  test('a second start without KEYWAY_REDIS_URL is refused naming the first, which keeps serving', async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const first = await start('postgres-first', database.url);
    expectRefusedFor(
      await refusedStart('postgres-second', database.url),
      /^keyway: cannot start: PostgreSQL at 127\.0\.0\.1:5432 \(KEYWAY_DATABASE_URL\) is in use/,
      first.process.pid,
    );
    expect(await ready(first)).toBe(200);
    expect(await first.stop('SIGTERM')).toBe(0);
  }, 90_000);

  test.skipIf(!redis)(
    'with KEYWAY_REDIS_URL (shared counters) two instances start and serve',
    async () => {
      const database = await createTestDatabase();
      databases.push(database);
      const shared = { KEYWAY_REDIS_URL: TEST_REDIS_URL, KEYWAY_REDIS_PREFIX: `lease-test-${crypto.randomUUID().slice(0, 8)}:` };
      const first = await start('postgres-redis-first', database.url, shared);
      const second = await start('postgres-redis-second', database.url, shared);
      expect([await ready(first), await ready(second)]).toEqual([200, 200]);
      expect([await first.stop('SIGTERM'), await second.stop('SIGTERM')]).toEqual([0, 0]);
    },
    90_000,
  );

  // QA20 ops: an instance that forgot KEYWAY_REDIS_URL beside ones that have it took no lease the
  // others held, started, and never heard a key revoked on them.
  test.skipIf(!redis)(
    'a start without KEYWAY_REDIS_URL beside instances with it is refused, and so is one with it beside an instance without',
    async () => {
      const database = await createTestDatabase();
      databases.push(database);
      const shared = { KEYWAY_REDIS_URL: TEST_REDIS_URL, KEYWAY_REDIS_PREFIX: `lease-test-${crypto.randomUUID().slice(0, 8)}:` };
      const withRedis = await start('postgres-mixed-redis', database.url, shared);
      const alone = await refusedStart('postgres-mixed-alone', database.url);
      expect({ exitCode: alone.exitCode, lines: alone.stderr.trim().split('\n').length }).toEqual({ exitCode: 1, lines: 1 });
      expect(alone.stderr).toMatch(
        new RegExp(
          `^keyway: cannot start: PostgreSQL at 127\\.0\\.0\\.1:5432 \\(KEYWAY_DATABASE_URL\\) is in use by Keyway instances that share their counters through Redis \\(the last to renew: host [^,]+, pid ${withRedis.process.pid},`,
        ),
      );
      expect(alone.stdout).not.toContain('Keyway listening');
      expect(await ready(withRedis)).toBe(200);
      expect(await withRedis.stop('SIGTERM')).toBe(0);
      // Its shared lease is left to run out (other instances with Redis may still renew it).
      await Bun.sleep(LEASE_MS + 200);
      const aloneNow = await start('postgres-mixed-alone-later', database.url);
      const directory = suite.dataDirectory('postgres-mixed-redis-later');
      const redisLater = await runUntilExit({ command: FROM_SOURCE, cwd: directory, env: environment(directory, database.url, shared) }, 15_000);
      expect({ exitCode: redisLater.exitCode, lines: redisLater.stderr.trim().split('\n').length }).toEqual({ exitCode: 1, lines: 1 });
      expect(redisLater.stderr).toMatch(
        new RegExp(
          `is in use by a Keyway instance without shared counters \\(host [^,]+, pid ${aloneNow.process.pid}, started [^)]+\\), whose lease on it runs \\d+ s more`,
        ),
      );
      expect(await ready(aloneNow)).toBe(200);
      expect(await aloneNow.stop('SIGTERM')).toBe(0);
    },
    90_000,
  );
});
