// The paths beyond the operator key: a member of the seed's team with every team policy on (issue 15
// judges throughput with them), and Keyway on PostgreSQL + Redis instead of the embedded default
// (issue 13's per-instance target). Each is set up as an operator would, through the management API.

import { join } from 'node:path';
import { seedTeamForBench } from '../../test/helpers/seed-team.ts';
import { deletePrefix, randomPrefix, redisReachable, TEST_REDIS_URL } from '../../test/counters-redis/redis.ts';
import { createTestDatabase, postgresReachable } from '../../test/store-postgres/database.ts';
import type { KeywayStart } from './keyway.ts';
import { startKeyway } from './keyway.ts';
import type { PathTarget } from './phases.ts';
import type { PathName } from './results.ts';
import { findFreePort } from './processes.ts';
import { pinStoreServers } from './store-servers.ts';
import { ADMIN_API_KEY, buildTeamChatBody } from './requests.ts';

/**
 * Creates the seed's team on a running Keyway and answers the path of its developer member. The seed's
 * $100 a day would run out within seconds at this rate; it is raised so every request is still
 * reserved and settled, and none refused.
 */
export async function addTeamPath(baseUrl: string, name: PathName): Promise<PathTarget> {
  const response = await fetch(`${baseUrl}/v1/teams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(seedTeamForBench({ openaiBudgetUsd: 1_000_000_000 })),
    signal: AbortSignal.timeout(10_000),
  });
  const team = (await response.json()) as { id?: string; members?: Array<{ api_key?: string }> };
  const apiKey = team.members?.[0]?.api_key;
  if (response.status !== 201 || apiKey === undefined)
    throw new Error(`creating the seed team answered ${response.status}: ${JSON.stringify(team).slice(0, 300)}`);
  return { name, baseUrl, apiKey, body: buildTeamChatBody(), headers: { 'X-Team-ID': String(team.id), 'X-Project-Tag': 'project-a' } };
}

export interface StoresKeyway {
  start: KeywayStart;
  /** Where the store servers run meanwhile (store-servers.ts), for the report. */
  storeServers: string;
  /** Drops the database and the Redis keys. */
  cleanUp(): Promise<void>;
}

/**
 * A second Keyway on a throwaway PostgreSQL database and a random Redis key prefix (the test suites'
 * servers: KEYWAY_TEST_POSTGRES_URL, KEYWAY_TEST_REDIS_URL), pinned like the first; or why not, when
 * either server does not answer.
 */
export async function startStoresKeyway(scratch: string, stubPort: number): Promise<StoresKeyway | string> {
  if (!(await postgresReachable())) return 'no PostgreSQL answered (KEYWAY_TEST_POSTGRES_URL or 127.0.0.1:5432)';
  if (!(await redisReachable())) return `no Redis answered at ${TEST_REDIS_URL}`;
  const database = await createTestDatabase();
  const prefix = randomPrefix();
  // Before Keyway connects: the backends PostgreSQL forks for it inherit the postmaster's cores.
  const servers = pinStoreServers();
  const cleanUp = async (): Promise<void> => {
    servers.restore();
    await database.drop();
    await deletePrefix(prefix);
  };
  const start = await startKeyway(join(scratch, 'keyway-pg'), findFreePort(), { openai: stubPort }, 'warn', {
    KEYWAY_DATABASE_URL: database.url,
    // A shared database needs an explicit master key; a fresh random one does for a throwaway database.
    KEYWAY_MASTER_KEY: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64'),
    KEYWAY_REDIS_URL: TEST_REDIS_URL,
    KEYWAY_REDIS_PREFIX: prefix,
  });
  if (!start.ok) await cleanUp();
  return { start, storeServers: servers.pinned, cleanUp };
}
