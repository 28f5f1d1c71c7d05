// Several Keyway instances on one PostgreSQL database and one Redis, as an operator runs them behind
// a load balancer: in this test process (startTestGateway, each with its own Redis connections, so
// the bus between them is real Redis pub/sub) or as separate operating-system processes
// (`bun plugins/main.ts`). Each run gets its own database and key prefix, removed afterwards.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from '../counters-redis/redis.ts';
import { call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { FROM_SOURCE, REPOSITORY_ROOT, startGatewayProcess, type GatewayProcess } from '../process/process-helpers.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';

export { OPERATOR_KEY, postgresReachable, TEST_REDIS_URL };

export const CLUSTER_MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 11 + 5)).toString('base64');

export interface SharedBackends {
  database: TestDatabase;
  prefix: string;
  /** Data directories of the processes started, removed with the rest. */
  directories: string[];
  /** The environment every instance shares: the database, Redis, the master and operator keys. */
  environment(extra?: Record<string, string>): Record<string, string>;
  remove(): Promise<void>;
}

export async function sharedBackends(): Promise<SharedBackends> {
  const database = await createTestDatabase();
  const prefix = randomPrefix();
  const directories: string[] = [];
  return {
    database,
    prefix,
    directories,
    environment: (extra = {}) => ({
      KEYWAY_DATABASE_URL: database.url,
      KEYWAY_MASTER_KEY: CLUSTER_MASTER_KEY,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_REDIS_URL: TEST_REDIS_URL,
      KEYWAY_REDIS_PREFIX: prefix,
      KEYWAY_USAGE_FLUSH_MS: '50',
      ...extra,
    }),
    async remove() {
      await database.drop();
      await deletePrefix(prefix);
      for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** In this process. The first starts alone (it migrates and bootstraps the database), then the rest. */
export async function startInProcessInstances(backends: SharedBackends, count: number, extra: Record<string, string> = {}): Promise<TestGateway[]> {
  const first = await startTestGateway({ probes: false, logLevel: 'warn', env: backends.environment(extra) });
  const rest = await Promise.all(
    Array.from({ length: count - 1 }, () => startTestGateway({ probes: false, logLevel: 'warn', env: backends.environment(extra) })),
  );
  return [first, ...rest];
}

/** Separate processes (`bun plugins/main.ts`), started together on backends an instance already set up. */
export async function startProcessInstances(backends: SharedBackends, count: number, extra: Record<string, string> = {}): Promise<GatewayProcess[]> {
  const spawn = () => {
    // Each instance has its own data directory (its usage journal), as on its own machine.
    const directory = mkdtempSync(join(tmpdir(), 'keyway-instance-'));
    backends.directories.push(directory);
    return startGatewayProcess({ command: FROM_SOURCE, cwd: REPOSITORY_ROOT, env: { KEYWAY_DATA_DIR: directory, ...backends.environment(extra) } }, 30_000);
  };
  return Promise.all(Array.from({ length: count }, spawn));
}

/** Polls `check` until it is true; returns the milliseconds it took, or throws after `timeoutMs`. */
export async function within(timeoutMs: number, what: string, check: () => Promise<boolean> | boolean, pollMs = 10): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await Bun.sleep(pollMs);
  }
  return performance.now() - started;
}

/**
 * Creates a team on the first instance with the account admin's key and waits until its first member's
 * key is known on every instance (each reloads its snapshot on the change). Answers that member's key.
 */
export async function createTeamOnEvery(
  instances: readonly TestGateway[],
  adminKey: string,
  team: Record<string, unknown>,
): Promise<{ id: string; memberKey: string }> {
  const created = await call(instances[0] as TestGateway, 'POST', '/v1/teams', team, { key: adminKey });
  if (created.status !== 201) throw new Error(`POST /v1/teams answered ${created.status}: ${await created.text()}`);
  const answer = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
  const memberKey = answer.members[0]?.api_key ?? '';
  for (const instance of instances)
    await within(2_000, 'the team on every instance', async () => (await call(instance, 'GET', '/v1/models', undefined, { key: memberKey })).status === 200);
  return { id: answer.id, memberKey };
}

export function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? Number.NaN;
}
