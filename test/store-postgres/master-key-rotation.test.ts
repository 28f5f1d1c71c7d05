// A master-key rotation on PostgreSQL vacuums the tables whose ciphertexts it replaced, as a provider
// key's deletion and conversion vacuum provider_keys: an UPDATE leaves the old row version (the
// envelope under the retired version) in the table's pages until vacuumed. PostgreSQL's own WAL,
// replicas and backups are the operator's (docs/deployment.md, "Secrets in PostgreSQL").

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { SQL } from 'bun';
import { call } from '../helpers/gateway.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, makeDataDirectory, startAt, type Restartable } from '../master-key/helpers.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const KEYS = canaryKeys(2, 'PGROT');
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
const TABLES = ['provider_keys', 'webhook_secrets', 'reconciliation_admin_keys'];
const reachable = await postgresReachable();

describe.skipIf(!reachable)('master key rotation on PostgreSQL', () => {
  let simulator: SimulatorHandle;
  let database: TestDatabase;
  const directory = makeDataDirectory();
  let gateway: Restartable | undefined;

  const restart = async (keyring: string): Promise<Restartable> => {
    await gateway?.stop();
    gateway = await startAt(directory.path, { KEYWAY_DATABASE_URL: database.url, KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: keyring });
    return gateway;
  };

  /** How many times each table was vacuumed, as the server counts it (reported when each VACUUM ends). */
  const vacuumCounts = async (): Promise<Record<string, number>> => {
    const client = new SQL(database.url, { max: 1 });
    try {
      const rows = (await client.unsafe('SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY($1::text[])', [TABLES])) as Array<{
        relname: string;
        vacuum_count: number | bigint;
      }>;
      return Object.fromEntries(rows.map((row) => [row.relname, Number(row.vacuum_count)]));
    } finally {
      await client.close();
    }
  };

  beforeAll(async () => {
    simulator = startOpenAISimulator({ apiKeys: KEYS });
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await gateway?.stop();
    await simulator?.stop();
    await database?.drop();
    directory.remove();
  });

  test('the re-wrap vacuums every table whose ciphertexts it replaced', async () => {
    let current = await restart(`1:${FIRST}`);
    expect((await call(current, 'POST', '/v1/providers/keys', { providers: KEYS.map((api_key) => ({ name: 'openai', api_key })) })).status).toBe(201);
    expect((await call(current, 'POST', '/v1/settings/webhook-secret', undefined, { key: current.defaultAdminKey })).status).toBe(201);
    const adminKey = { provider: 'openai', admin_key: 'sk-admin-CANARYPGROTxDoNotLeak0123456789abcdef', verify: false };
    expect((await call(current, 'PUT', '/v1/reconciliation/admin-keys', adminKey)).status).toBe(200);

    current = await restart(`1:${FIRST},2:${SECOND}`);
    const before = await vacuumCounts();
    const rotated = await call(current, 'POST', '/v1/admin/master-key/rotate');
    expect(await rotated.json()).toMatchObject({ status: 'completed', rewrapped: 4, failed: 0, removable_versions: [1] });
    const after = await vacuumCounts();
    expect(TABLES.filter((table) => (after[table] ?? 0) <= (before[table] ?? 0))).toEqual([]);
  });
});
