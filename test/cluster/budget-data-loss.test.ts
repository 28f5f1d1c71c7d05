// Three instances on one PostgreSQL database and one Redis (in this process, reaching Redis through a
// proxy the test can cut) when Redis loses the budget counters mid-day (QA15 #1, #2, #4):
//   - the keys vanish while every connection stays up (FLUSHALL, eviction, a failover to a replica that
//     was behind): on an exhausted budget none of a concurrent burst is served, and with room for four
//     worst cases exactly four are, the day's spend read back from the usage rows;
//   - Redis goes down and comes back empty (a restart without persistence): /ready turns clean on
//     every instance without a request, and a burst over all three on an exhausted budget serves none.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { toNanosCeil } from '../../core/catalog/nano-usd.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { utcDay, worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { startRedisProxy, type RedisProxy } from '../counters-redis/proxy.ts';
import { deletePrefix } from '../counters-redis/redis.ts';
import { addProviderKeys, call, flushUsage, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTeamOnEvery, postgresReachable, sharedBackends, startInProcessInstances, TEST_REDIS_URL, within, type SharedBackends } from './instances.ts';

const OPENAI_KEY = 'sk-proj-ClusterBudgetDataLossOpenAIKey0001';
const MODEL = 'gpt-4o-mini';
// A burst's request: a short prompt and few output tokens, so its worst case is a small part of what
// the day already spent (the long prompts below): a counter that forgot the day would serve dozens.
const body = { model: MODEL, messages: [{ role: 'user', content: 'Write one short sentence about budgets.' }], max_tokens: 16 };
const spendBody = { model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(4_000).trim() }], max_tokens: 16 };
const FITS = 4;

const reachable = await postgresReachable();

describe.skipIf(!reachable)('budgets when Redis loses its data under three instances', () => {
  let backends: SharedBackends;
  let proxy: RedisProxy;
  let openai: SimulatorHandle;
  let instances: TestGateway[] = [];
  let adminKey = '';
  let teamId = '';
  let memberKey = '';
  let worstNanos = 0;

  beforeAll(async () => {
    backends = await sharedBackends();
    const target = new URL(TEST_REDIS_URL);
    proxy = startRedisProxy({ hostname: target.hostname, port: Number(target.port || 6379) });
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    instances = await startInProcessInstances(backends, 3, {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      KEYWAY_REDIS_URL: proxy.url,
      KEYWAY_REDIS_TIMEOUT_MS: '500',
    });
    const first = instances[0] as TestGateway;
    adminKey = first.defaultAdminKey;
    await addProviderKeys(first, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
    const pricing = first.runtime.services.pricing;
    const request = body as unknown as ChatRequest;
    worstNanos = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
    ({ id: teamId, memberKey } = await createTeamOnEvery(instances, adminKey, {
      name: 'Engineering Team',
      byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 1 } } },
      members: [{ email: 'developer@company.com', role: 'developer', byok_access: true }],
    }));
  }, 60_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await openai?.stop();
    proxy?.cut();
    await backends?.remove();
  });

  /** Today's booked OpenAI spend of the team, as the seeding reads it (every instance's rows written first). */
  async function bookedNanos(): Promise<number> {
    for (const instance of instances) await flushUsage(instance);
    const day = utcDay(Date.now());
    const rows = await (instances[0] as TestGateway).runtime.store.summarizeUsage({
      accountId: 'default',
      teamId,
      from: new Date(day.start).toISOString(),
      to: new Date(day.end).toISOString(),
    });
    return toNanosCeil(rows.filter((row) => row.provider === 'openai').reduce((sum, row) => sum + row.costUsd, 0));
  }

  /** Sets the cap to today's spend plus room for `fits` worst cases (and half of one more), in force on every instance. */
  async function capWithRoomFor(fits: number): Promise<number> {
    const capNanos = (await bookedNanos()) + fits * worstNanos + Math.floor(worstNanos / 2);
    const patched = await call(
      instances[0] as TestGateway,
      'PATCH',
      `/v1/teams/${teamId}`,
      { byok_permissions: { providers: { openai: { max_cost_per_day: capNanos / 1e9 } } } },
      { key: adminKey },
    );
    expect(patched.status).toBe(200);
    for (const instance of instances) await instance.runtime.services.snapshot.refresh();
    return capNanos;
  }

  /** `count` requests at once, spread over the three instances: their statuses. */
  async function burst(count: number, sent: Record<string, unknown> = body): Promise<number[]> {
    return Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const response = await call(instances[index % instances.length] as TestGateway, 'POST', '/v1/chat/completions', sent, { key: memberKey });
        await response.arrayBuffer();
        return response.status;
      }),
    );
  }

  test('the keys vanish with every connection up: an exhausted budget serves none of a burst, one with room for four serves exactly four', async () => {
    // The day so far: three long prompts, one per instance, together far more than a burst's worst case.
    expect(await burst(3, spendBody)).toEqual([200, 200, 200]);
    expect(await bookedNanos()).toBeGreaterThan(30 * worstNanos);
    await capWithRoomFor(0);
    const upstreamBefore = openai.inferenceRequests().length;
    await deletePrefix(backends.prefix);
    const exhausted = await burst(12);
    expect(exhausted.filter((status) => status === 200).length).toBe(0);
    expect(new Set(exhausted)).toEqual(new Set([402]));
    expect(openai.inferenceRequests().length).toBe(upstreamBefore);

    const capNanos = await capWithRoomFor(FITS);
    await deletePrefix(backends.prefix);
    // Every answer waits, so every reservation is made before any settles.
    openai.setSticky({ kind: 'delay', delayMs: 800 });
    const statuses = await burst(15);
    openai.setSticky(undefined);
    expect(statuses.filter((status) => status === 200).length).toBe(FITS);
    expect(statuses.filter((status) => status === 402).length).toBe(15 - FITS);
    expect(await bookedNanos()).toBeLessThanOrEqual(capNanos);
  }, 30_000);

  test('Redis restarts empty: /ready is clean everywhere without a request, and a burst on an exhausted budget serves none', async () => {
    await capWithRoomFor(0);
    proxy.cut();
    // Every instance notices (a budgeted request fails closed) and says so on /ready.
    expect(await burst(3)).toEqual([503, 503, 503]);
    const degraded = async (instance: TestGateway) => ((await (await call(instance, 'GET', '/ready')).json()) as { degraded?: unknown }).degraded;
    for (const instance of instances) expect(await degraded(instance)).toBeDefined();
    await deletePrefix(backends.prefix);
    proxy.restore();
    for (const instance of instances) await within(3_000, '/ready clean again', async () => (await degraded(instance)) === undefined, 50);
    const upstreamBefore = openai.inferenceRequests().length;
    const statuses = await burst(15);
    expect(statuses.filter((status) => status === 200).length).toBe(0);
    expect(new Set(statuses)).toEqual(new Set([402]));
    expect(openai.inferenceRequests().length).toBe(upstreamBefore);
  }, 30_000);
});
