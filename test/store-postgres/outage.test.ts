// PostgreSQL unreachable while the gateway runs (the test database refuses connections and its open
// ones are cut): requests are still served from the in-memory snapshot, usage waits in the queue and
// /ready says so while staying 200 (every instance shares the database: a 503 would take them all out
// of the balancer), management calls answer 503 storage_unavailable with Retry-After; when the database
// comes back every row is written once.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { SQL } from 'bun';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const OPENAI_KEY = 'sk-proj-PostgresOutageCanary00000000000000001';
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 17 + 9)).toString('base64');
const SERVER = process.env.KEYWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const reachable = await postgresReachable();

/** Cuts the database off (no new connections, open ones terminated) or lets it back. */
async function setReachable(database: TestDatabase, allow: boolean): Promise<void> {
  const name = new URL(database.url).pathname.slice(1);
  const admin = new SQL(SERVER, { max: 1 });
  try {
    await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`);
    if (!allow) await admin.unsafe('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
  } finally {
    await admin.close();
  }
}

describe.skipIf(!reachable)('PostgreSQL outage', () => {
  let openai: SimulatorHandle;
  let database: TestDatabase;
  let gateway: TestGateway;
  let teamId = '';

  beforeAll(async () => {
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    database = await createTestDatabase();
    gateway = await startTestGateway({
      probes: false,
      env: { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` },
    });
    await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], gateway.defaultAdminKey);
    const created = await call(
      gateway,
      'POST',
      '/v1/teams',
      { name: 'Outage Team', byok_permissions: { providers: { openai: { enabled: true } } }, members: [{ email: 'dev@example.com', role: 'developer' }] },
      { key: gateway.defaultAdminKey },
    );
    expect(created.status).toBe(201);
    teamId = String(((await created.json()) as { id: string }).id);
  });

  afterAll(async () => {
    await setReachable(database, true).catch(() => undefined);
    await gateway?.stop();
    await openai?.stop();
    await database?.drop();
  });

  test('requests are served during the outage; their usage is written once when it ends', async () => {
    await setReachable(database, false);
    for (let index = 0; index < 5; index++) {
      const response = await call(
        gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o', messages: [{ role: 'user', content: `outage ${index}` }] },
        { key: gateway.defaultAdminKey, headers: { 'x-request-id': `req_outage_${index}` } },
      );
      expect(response.status).toBe(200);
      await response.json();
    }
    // The queue tries to write (every 50 ms here) and fails while the database is cut off.
    await Bun.sleep(300);
    await expect(gateway.runtime.store.ping()).rejects.toThrow();
    // A load balancer is told the truth without being told to take the instance out: it serves, degraded.
    const during = await call(gateway, 'GET', '/ready', undefined, { key: '' });
    const body = await during.text();
    const degraded = (JSON.parse(body) as { degraded?: Array<{ check: string; detail: string }> }).degraded ?? [];
    expect({ status: during.status, checks: degraded.map((note) => note.check) }).toEqual({ status: 200, checks: ['storage', 'usage'] });
    expect(degraded[0]?.detail).toMatch(/^storage is not reachable: requests are served/);
    expect(degraded[1]?.detail).toMatch(/they wait in the usage journal/);
    expect(body).not.toContain(new URL(database.url).pathname.slice(1));
    // Management calls that need the database: a retryable 503, never the driver's class or words.
    const answers = [
      await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { name: 'Renamed During Outage' }, { key: gateway.defaultAdminKey }),
      await call(gateway, 'GET', '/v1/usage/me', undefined, { key: gateway.defaultAdminKey }),
    ];
    for (const answer of answers) {
      const text = await answer.text();
      expect({
        status: answer.status,
        retryAfter: answer.headers.get('retry-after'),
        code: (JSON.parse(text) as { error: { code: string } }).error.code,
      }).toEqual({
        status: 503,
        retryAfter: '5',
        code: 'storage_unavailable',
      });
      expect(text).not.toMatch(/Postgres|accepting connections|internal_error/);
      expect(text).not.toContain(new URL(database.url).pathname.slice(1));
    }
    await setReachable(database, true);
    let rows: string[] = [];
    for (let attempt = 0; attempt < 100 && rows.length < 5; attempt++) {
      await Bun.sleep(100);
      rows = (await gateway.runtime.store.listUsage('default').catch(() => [])).map((row) => row.requestId).filter((id) => id.startsWith('req_outage_'));
    }
    expect(rows.sort()).toEqual([0, 1, 2, 3, 4].map((index) => `req_outage_${index}`));
    const ready = await call(gateway, 'GET', '/ready', undefined, { key: '' });
    expect({ status: ready.status, body: await ready.json() }).toEqual({ status: 200, body: { status: 'ready', config_version: expect.any(Number) } });
    const renamed = await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { name: 'Renamed After Outage' }, { key: gateway.defaultAdminKey });
    expect(renamed.status).toBe(200);
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): the outage test is skipped', () => {});
