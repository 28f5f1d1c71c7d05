// Two instances starting at once on a fresh PostgreSQL database (a deployment's first rollout with two
// replicas) both find no `default` account and both create it. The one whose insert loses used to stop
// with `keyway: cannot start: PostgresError: duplicate key value violates unique constraint
// "accounts_pkey"` (QA20 ops). It is a later start: it serves, and only the winner prints the admin key,
// which the other takes in with the next configuration poll (the winner records a configuration change).

import { afterAll, describe, expect, test } from 'bun:test';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 13 + 7)).toString('base64');
const postgres = await postgresReachable();
const databases: TestDatabase[] = [];
const gateways: TestGateway[] = [];

afterAll(async () => {
  for (const gateway of gateways) await gateway.stop();
  for (const database of databases) await database.drop();
});

describe.skipIf(!postgres)('a first start of two instances at once on one PostgreSQL database', () => {
  test('both start; the default account and its admin key are created once, printed by one, valid on both', async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const env = { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY, KEYWAY_CONFIG_POLL_MS: '100' };
    const hub = new LocalClusterHub();
    const started = await Promise.allSettled([
      startTestGateway({ probes: false, env, cluster: hub.join() }),
      startTestGateway({ probes: false, env, cluster: hub.join() }),
    ]);
    for (const result of started) if (result.status === 'fulfilled') gateways.push(result.value);
    expect(started.map((result) => (result.status === 'rejected' ? String(result.reason) : 'started'))).toEqual(['started', 'started']);
    const printed = gateways.map((gateway) => gateway.defaultAdminKey).filter((key) => key !== '');
    expect(printed).toHaveLength(1);
    const statuses = async () => Promise.all(gateways.map(async (gateway) => (await call(gateway, 'GET', '/v1/keys', undefined, { key: printed[0] })).status));
    for (let waited = 0; waited < 2_000 && (await statuses()).some((status) => status !== 200); waited += 100) await Bun.sleep(100);
    expect(await statuses()).toEqual([200, 200]);
  }, 60_000);
});
