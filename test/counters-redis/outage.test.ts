// Redis goes away under a running gateway (a proxy in front of the test Redis is cut): requests of a
// team with a budget fail closed with 503 and a clear message, a team without one is served, and
// once Redis is back budgets work again; /ready says so within about a second of its return, with no
// request needed. A gateway started while Redis is down still starts.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway } from '../policies/team-fixture.ts';
import { startRedisProxy, type RedisProxy } from './proxy.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const prefix = randomPrefix();
const target = new URL(TEST_REDIS_URL);
let proxy: RedisProxy;
let setup: TeamGateway;
let unbudgetedKey = '';

const ask = (gateway: Pick<TestGateway, 'url'>, key: string): Promise<Response> =>
  call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 }, { key });

beforeAll(async () => {
  proxy = startRedisProxy({ hostname: target.hostname, port: Number(target.port || 6379) });
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: 10 } } },
    { env: { KEYWAY_REDIS_URL: proxy.url, KEYWAY_REDIS_PREFIX: prefix, KEYWAY_REDIS_TIMEOUT_MS: '500' } },
  );
  const created = await call(
    setup.gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Research Team',
      byok_permissions: { providers: { openai: { enabled: true } } },
      members: [{ email: 'researcher@company.com', role: 'developer', byok_access: true }],
    },
    { key: setup.adminKey },
  );
  expect(created.status).toBe(201);
  unbudgetedKey = ((await created.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
});

afterAll(async () => {
  await setup.stop();
  proxy.cut();
  await deletePrefix(prefix);
});

describe('Redis outage', () => {
  test('while Redis is down, a budgeted team gets 503 with a clear message and an unbudgeted team is served; both work once it is back', async () => {
    expect(setup.gateway.runtime.counters.name).toBe('redis');
    expect((await ask(setup.gateway, setup.memberKey)).status).toBe(200);
    expect((await ask(setup.gateway, unbudgetedKey)).status).toBe(200);

    proxy.cut();
    const refused = await ask(setup.gateway, setup.memberKey);
    expect(refused.headers.get('retry-after')).toBe('5');
    const body = await expectSpecError(refused, 503, 'no_provider_available');
    expect(body.error.message).toContain('unreachable');
    expect(body.error.message).toContain("Team 'Engineering Team'");
    expect(body.error.message).toContain('budget');
    // The URL of Redis is named by host and port at most; never with credentials.
    expect(body.error.message).not.toContain('redis://');
    expect((await ask(setup.gateway, unbudgetedKey)).status).toBe(200);
    // Still ready (every instance shares Redis), saying what is degraded.
    const ready = await call(setup.gateway, 'GET', '/ready');
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { degraded?: Array<{ check: string }> }).degraded?.map((note) => note.check)).toEqual(['counters']);
    // No upstream call was made for the refused request.
    const upstreamBefore = setup.openai.inferenceRequests().length;
    await expectSpecError(await ask(setup.gateway, setup.memberKey), 503, 'no_provider_available');
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);

    proxy.restore();
    // The next attempt to reconnect comes at most a second after the last failure.
    let status = 0;
    for (let attempt = 0; attempt < 30 && status !== 200; attempt += 1) {
      await Bun.sleep(100);
      status = (await ask(setup.gateway, setup.memberKey)).status;
    }
    expect(status).toBe(200);
    expect(((await (await call(setup.gateway, 'GET', '/ready')).json()) as { degraded?: unknown }).degraded).toBeUndefined();
    expect(setup.gateway.output.join('\n')).toContain('Redis unreachable');
    expect(setup.gateway.output.join('\n')).toContain('Redis reachable again');
  }, 30_000);

  test('once Redis is back, /ready turns clean and the recovery is logged without any request (QA15 #4)', async () => {
    const recoveries = () => setup.gateway.output.filter((line) => line.includes('Redis reachable again: budgets')).length;
    const degraded = async () => ((await (await call(setup.gateway, 'GET', '/ready')).json()) as { degraded?: Array<{ check: string }> }).degraded;
    proxy.cut();
    await expectSpecError(await ask(setup.gateway, setup.memberKey), 503, 'no_provider_available');
    expect((await degraded())?.map((note) => note.check)).toEqual(['counters']);
    const before = recoveries();
    proxy.restore();
    // Only /ready is asked, which reads a flag and sends Redis nothing: the instance tries Redis on its own.
    const started = performance.now();
    while ((await degraded()) !== undefined) {
      if (performance.now() - started > 5_000) throw new Error('/ready still says the counters are unreachable 5 s after Redis returned');
      await Bun.sleep(50);
    }
    // Within about a second (the retry interval) of its return, not on the next budgeted request.
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(recoveries()).toBe(before + 1);
    expect((await ask(setup.gateway, setup.memberKey)).status).toBe(200);
  }, 30_000);

  test('a gateway started while Redis is down starts, answers /health and logs that Redis is unreachable', async () => {
    proxy.cut();
    const gateway = await startTestGateway({ probes: false, logLevel: 'warn', env: { KEYWAY_REDIS_URL: proxy.url, KEYWAY_REDIS_PREFIX: prefix } });
    try {
      expect(gateway.runtime.counters.name).toBe('redis');
      expect((await call(gateway, 'GET', '/health')).status).toBeLessThan(500);
      expect(gateway.output.join('\n')).toContain('Redis is unreachable at start');
    } finally {
      await gateway.stop();
      proxy.restore();
    }
  }, 30_000);
});
