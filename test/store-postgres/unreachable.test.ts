// PostgreSQL's server gone (QA15 cluster #8, #9): the gateway reaches its database through a TCP proxy
// that the test closes, as a server that stopped or a network cut looks to it (connection refused).
// Inference is served from memory; /ready stays 200 and reports the store degraded; management
// writes and GET /v1/usage/me answer 503 storage_unavailable with Retry-After, never the driver's
// class; once the proxy listens again, the same calls succeed.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startRedisProxy, type RedisProxy } from '../counters-redis/proxy.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const OPENAI_KEY = 'sk-proj-PostgresUnreachableCanary000000000001';
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 13 + 5)).toString('base64');

const reachable = await postgresReachable();

interface ErrorAnswer {
  status: number;
  retryAfter: string | null;
  code: string | undefined;
  text: string;
}

async function errorAnswer(response: Response): Promise<ErrorAnswer> {
  const text = await response.text();
  const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  return { status: response.status, retryAfter: response.headers.get('retry-after'), code, text };
}

describe.skipIf(!reachable)('PostgreSQL server unreachable (a closed TCP proxy)', () => {
  let openai: SimulatorHandle;
  let database: TestDatabase;
  // The proxy is plain TCP: it forwards PostgreSQL as well as Redis.
  let proxy: RedisProxy;
  let gateway: TestGateway;
  let teamId = '';

  beforeAll(async () => {
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    database = await createTestDatabase();
    const direct = new URL(database.url);
    proxy = startRedisProxy({ hostname: direct.hostname, port: Number(direct.port || 5432) });
    const throughProxy = new URL(database.url);
    throughProxy.port = new URL(proxy.url).port;
    gateway = await startTestGateway({
      probes: false,
      env: { KEYWAY_DATABASE_URL: throughProxy.toString(), KEYWAY_MASTER_KEY: MASTER_KEY, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` },
    });
    await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], gateway.defaultAdminKey);
    const created = await call(
      gateway,
      'POST',
      '/v1/teams',
      { name: 'Cut Team', byok_permissions: { providers: { openai: { enabled: true } } }, members: [{ email: 'dev@example.com', role: 'developer' }] },
      { key: gateway.defaultAdminKey },
    );
    expect(created.status).toBe(201);
    teamId = String(((await created.json()) as { id: string }).id);
  });

  afterAll(async () => {
    proxy?.restore();
    await gateway?.stop();
    proxy?.cut();
    await openai?.stop();
    await database?.drop();
  });

  test('management calls answer 503 storage_unavailable, inference is served and /ready stays 200, degraded', async () => {
    proxy.cut();
    const chat = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'served while the database is away' }] },
      { key: gateway.defaultAdminKey },
    );
    expect(chat.status).toBe(200);
    await chat.json();

    const answers = [
      await errorAnswer(await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { name: 'Renamed' }, { key: gateway.defaultAdminKey })),
      await errorAnswer(await call(gateway, 'POST', '/v1/keys', { name: 'written while cut', role: 'developer' }, { key: gateway.defaultAdminKey })),
      await errorAnswer(await call(gateway, 'GET', '/v1/usage/me', undefined, { key: gateway.defaultAdminKey })),
    ];
    for (const answer of answers) {
      expect({ status: answer.status, retryAfter: answer.retryAfter, code: answer.code }).toEqual({
        status: 503,
        retryAfter: '5',
        code: 'storage_unavailable',
      });
      expect(answer.text).not.toMatch(/Postgres|Failed to connect|internal_error/);
    }
    expect(gateway.output.join('\n')).toContain('answered 503 storage_unavailable');

    const ready = await call(gateway, 'GET', '/ready', undefined, { key: '' });
    const body = (await ready.json()) as { status: string; degraded?: Array<{ check: string }> };
    expect({ status: ready.status, ready: body.status, checks: body.degraded?.map((note) => note.check) }).toEqual({
      status: 200,
      ready: 'ready',
      checks: ['storage'],
    });

    proxy.restore();
    let renamed = 0;
    for (let attempt = 0; attempt < 50 && renamed !== 200; attempt++) {
      renamed = (await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { name: 'Renamed' }, { key: gateway.defaultAdminKey })).status;
      if (renamed !== 200) await Bun.sleep(100);
    }
    expect(renamed).toBe(200);
    const usage = await call(gateway, 'GET', '/v1/usage/me', undefined, { key: gateway.defaultAdminKey });
    expect(usage.status).toBe(200);
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): the unreachable test is skipped', () => {});
