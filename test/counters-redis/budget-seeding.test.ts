// cost-cap over Redis counters that lose their data (QA15 #1, #2, #7): two "instances", each a cost
// cap with its own RedisCounters (own connection) on one key prefix and a store both read, as two
// gateways on one Redis and one database. Round prices: a request's worst case is $11 (10 prompt
// tokens at $1, 100 output tokens at $0.01), and the store has booked $20 today.
//   - The keys vanish without the connection dropping (FLUSHALL, eviction): the next reservations
//     see the counter is not seeded, one instance reads the day back, and only what fits is granted.
//   - A restart-like loss (the connection cut, the keys gone, Redis back) while both instances race:
//     no reservation is made on the empty counter while one of them reads the store.
//   - A seed slower than the wait: the other instance refuses with 503, Retry-After 1, x-should-retry.
//   - A refusal caused by the other instance's reservations in flight: Retry-After 2, not midnight.

import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { PricingService } from '../../core/spec/services.ts';
import type { UsageSummaryRow } from '../../core/spec/store.ts';
import { RedisCounters } from '../../plugins/counters-redis/counters.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { budgetKey, createCostCap } from '../../policies/cost-cap/index.ts';
import { SEED_WAIT_MS } from '../../policies/cost-cap/seeding.ts';
import { utcDay } from '../../policies/cost-cap/worst-case.ts';
import { ACCOUNT, context, costCapServices, key, outcomeOf, refusalErrorOf, TEAM, teamsSection } from '../policies/helpers.ts';
import { startRedisProxy } from './proxy.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const pricing: PricingService = {
  estimatePromptTokens: () => 10,
  promptTokenBound: () => 10,
  countPromptTokens: async () => undefined,
  countedPromptTokens: () => undefined,
  price: () => ({ inputPerToken: 1, outputPerToken: 0.01, maxOutputTokens: 1000, maxInputTokens: undefined }),
};
const WORST_NANOS = 11_000_000_000;
const BOOKED_USD = 20;
const booked: UsageSummaryRow[] = [
  { provider: 'openai', model: 'gpt-4o', teamId: TEAM, requests: 4, inputTokens: 0, outputTokens: 0, costUsd: BOOKED_USD, unpricedRequests: 0 },
];
/** $20 booked, room for exactly three $11 worst cases more (and $5 to spare). */
const CAP_USD = BOOKED_USD + 3 * 11 + 5;
const permissions: TeamPermissions = { providers: { openai: { enabled: true, max_cost_per_day: CAP_USD } } };

const target = new URL(TEST_REDIS_URL);
const prefix = randomPrefix();
const proxies: Array<ReturnType<typeof startRedisProxy>> = [];
const made: RedisCounters[] = [];
afterEach(() => {
  for (const counters of made.splice(0)) counters.close();
  for (const proxy of proxies.splice(0)) proxy.cut();
});
afterAll(() => deletePrefix(prefix));

interface Store {
  reads: number;
  delayMs: number;
}

interface Instance {
  hooks: ReturnType<typeof createCostCap>;
  counters: RedisCounters;
}

/** One "gateway": a cost cap over its own Redis connection (through `url`), reading `store`. */
function instance(url: string, keyPrefix: string, store: Store): Instance {
  const clock = { now: () => Date.now() };
  const counters = new RedisCounters({ url, prefix: keyPrefix, clock, timeoutMs: 1_000, retryMs: 100 });
  made.push(counters);
  const section = teamsSection(permissions);
  const services = costCapServices({
    clock,
    counters,
    pricing,
    section,
    async summarizeUsage() {
      store.reads += 1;
      await Bun.sleep(store.delayMs);
      return booked;
    },
  });
  return { hooks: createCostCap(services), counters };
}

function request(): RequestContext {
  const built = context({ body: { max_tokens: 100 } });
  built.teamId = TEAM;
  built.candidates = [{ provider: 'openai', model: 'gpt-4o', key: key('pk_0', 'openai') }];
  return built;
}

/** Each request's refusal code, or 'granted' (its reservation stays held: nothing settles). */
async function race(instances: Instance[], perInstance: number): Promise<string[]> {
  return Promise.all(
    instances.flatMap((one) => Array.from({ length: perInstance }, async () => (await refusalErrorOf(() => one.hooks.call(request())))?.code ?? 'granted')),
  );
}

const counterKey = () => budgetKey(ACCOUNT, TEAM, 'openai', utcDay(Date.now()).date);

/** Two instances on one fresh sub-prefix, both past their first budgeted request (seeded, as a running cluster is). */
async function runningPair(store: Store, urls: [string, string] = [TEST_REDIS_URL, TEST_REDIS_URL]) {
  const keyPrefix = `${prefix}${crypto.randomUUID().slice(0, 8)}:`;
  const pair = [instance(urls[0], keyPrefix, store), instance(urls[1], keyPrefix, store)];
  for (const one of pair) expect(await one.counters.connect()).toBe(true);
  for (const one of pair) {
    const first = request();
    await one.hooks.call(first);
    first.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
    await one.hooks.account(first, outcomeOf(0));
  }
  expect(store.reads).toBe(1);
  expect(await (pair[0] as Instance).counters.get(counterKey())).toBe(BOOKED_USD * 1e9);
  return { pair, keyPrefix };
}

describe('cost-cap on Redis counters that lose their data', () => {
  test('the keys vanish without the connection dropping: exactly what fits is granted after the reseed, and none of 16 once the day’s spend is at the cap', async () => {
    const store: Store = { reads: 0, delayMs: 20 };
    const { pair, keyPrefix } = await runningPair(store);
    // Exhaust it: three reservations held, $53 of $58.
    expect(await race(pair, 2).then((codes) => codes.filter((code) => code === 'granted').length)).toBe(3);

    // FLUSHALL, eviction or a failover to a replica that was behind: the instances notice nothing.
    await deletePrefix(keyPrefix);
    // The reservations in flight are gone with the counter; the booked $20 is read back, so three fit again.
    const afterLoss = await race(pair, 8);
    expect(afterLoss.filter((code) => code === 'granted').length).toBe(3);
    expect(afterLoss.filter((code) => code === 'budget_exceeded').length).toBe(13);
    expect(store.reads).toBe(2);
    expect(await (pair[1] as Instance).counters.get(counterKey())).toBe(BOOKED_USD * 1e9 + 3 * WORST_NANOS);

    // Lost again, now with the day's spend in the store at the cap: nothing is served.
    booked[0] = { ...(booked[0] as UsageSummaryRow), costUsd: CAP_USD - 1 };
    try {
      await deletePrefix(keyPrefix);
      const exhausted = await race(pair, 8);
      expect(exhausted.filter((code) => code === 'granted').length).toBe(0);
      expect(new Set(exhausted)).toEqual(new Set(['budget_exceeded']));
    } finally {
      booked[0] = { ...(booked[0] as UsageSummaryRow), costUsd: BOOKED_USD };
    }
  }, 20_000);

  test('a restart-like loss with both instances racing the reseed: none reserves on the empty counter while one reads the store', async () => {
    const store: Store = { reads: 0, delayMs: 150 };
    const proxy = startRedisProxy({ hostname: target.hostname, port: Number(target.port || 6379) });
    proxies.push(proxy);
    const { pair, keyPrefix } = await runningPair(store, [proxy.url, proxy.url]);
    // Redis goes down (both instances notice: their budgeted requests fail closed) and comes back empty.
    proxy.cut();
    expect(await race(pair, 1)).toEqual(['no_provider_available', 'no_provider_available']);
    await deletePrefix(keyPrefix);
    proxy.restore();
    await Bun.sleep(150);
    const codes = await race(pair, 10);
    // $20 booked: three of twenty fit, whichever instance reads the store; the other waits for it.
    expect(codes.filter((code) => code === 'granted').length).toBe(3);
    expect(codes.filter((code) => code === 'budget_exceeded').length).toBe(17);
    expect(store.reads).toBe(2);
  }, 20_000);

  test('a seed slower than the wait: the instance that reads serves what fits, the other refuses with 503 and a one-second retry', async () => {
    const store: Store = { reads: 0, delayMs: 0 };
    const { pair, keyPrefix } = await runningPair(store);
    const [reader, waiter] = pair as [Instance, Instance];
    await deletePrefix(keyPrefix);
    store.delayMs = SEED_WAIT_MS + 500;
    const reading = race([reader], 4);
    await Bun.sleep(100);
    const refusal = await refusalErrorOf(() => waiter.hooks.call(request()));
    expect(refusal?.code).toBe('no_provider_available');
    expect(refusal?.retryAfterSeconds).toBe(1);
    expect(refusal?.headers).toEqual({ 'x-should-retry': 'true' });
    expect(refusal?.message).toContain("do not hold today's spend yet");
    const codes = await reading;
    expect(codes.filter((code) => code === 'granted').length).toBe(3);
    expect(store.reads).toBe(2);
    // Seeded now: the waiting instance's next request is answered from the counter (refused: the cap is full).
    store.delayMs = 0;
    expect((await refusalErrorOf(() => waiter.hooks.call(request())))?.code).toBe('budget_exceeded');
    expect(store.reads).toBe(2);
  }, 20_000);
});

describe("a refusal caused by another instance's reservations in flight (QA15 #7)", () => {
  test('is told to retry in 2 s with x-should-retry, and what is left and in flight is said; a spend refusal keeps the midnight Retry-After', async () => {
    const store: Store = { reads: 0, delayMs: 0 };
    const { pair } = await runningPair(store);
    const [busy, idle] = pair as [Instance, Instance];
    const held = [request(), request(), request()];
    for (const one of held) await busy.hooks.call(one);

    const refusal = await refusalErrorOf(() => idle.hooks.call(request()));
    expect(refusal?.code).toBe('budget_exceeded');
    expect(refusal?.retryAfterSeconds).toBe(2);
    expect(refusal?.headers).toEqual({ 'x-should-retry': 'true' });
    expect(refusal?.message).not.toContain('no daily budget left');
    expect(refusal?.message).toContain('requests in flight on the gateways sharing this budget hold $33.00');
    // Only $20 is spent: $38 left, $33 of it held by the other instance.
    expect(refusal?.extra).toMatchObject({ remaining_usd: CAP_USD - BOOKED_USD, in_flight_usd: 33, worst_case_usd: 11 });

    // Settled at their real cost: room again.
    for (const one of held) {
      one.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
      await busy.hooks.account(one, outcomeOf(11));
    }
    const spent = await refusalErrorOf(() => idle.hooks.call(request()));
    expect(spent?.code).toBe('budget_exceeded');
    expect(spent?.retryAfterSeconds).toBeGreaterThan(2);
    expect(spent?.headers).toBeUndefined();
    expect(spent?.message).toContain('no daily budget left');
    expect(spent?.extra).toMatchObject({ remaining_usd: 5, in_flight_usd: 0 });
  }, 20_000);
});
