// A request that finishes while Redis is away cannot settle its lease then: the settlement is kept
// and retried, so once Redis is back the day's total holds the request's real cost, neither its worst
// case (a budget left blocked) nor nothing (a lapsed lease, spend unbooked).

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { RedisClient } from 'bun';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { budgetKey } from '../../policies/cost-cap/index.ts';
import { utcDay, worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { RedisCounters } from '../../plugins/counters-redis/counters.ts';
import { startTeamGateway, type TeamGateway } from '../policies/team-fixture.ts';
import { startRedisProxy, type RedisProxy } from './proxy.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const prefix = randomPrefix();
const target = new URL(TEST_REDIS_URL);
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1000 };
let proxy: RedisProxy;
let setup: TeamGateway;

beforeAll(async () => {
  proxy = startRedisProxy({ hostname: target.hostname, port: Number(target.port || 6379) });
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: 10 } } },
    // A 6 s lease, renewed (and failed settlements retried) every 2 s.
    { env: { KEYWAY_REDIS_URL: proxy.url, KEYWAY_REDIS_PREFIX: prefix, KEYWAY_REDIS_TIMEOUT_MS: '500', KEYWAY_FIRST_BYTE_TIMEOUT_MS: '1000' } },
  );
});

afterAll(async () => {
  await setup.stop();
  proxy.cut();
  await deletePrefix(prefix);
});

test('a settlement that fails while Redis is away is booked once Redis is back', async () => {
  const pricing = setup.gateway.runtime.services.pricing;
  const worst = worstCaseNanos(pricing, body as ChatRequest, 'openai', body.model, pricing.promptTokenBound(body as ChatRequest)) as number;
  setup.openai.inject({ kind: 'delay', delayMs: 600 });
  const answer = fetch(`${setup.gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${setup.memberKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  // The reservation is made, then Redis goes away before the answer (and its settlement).
  await Bun.sleep(200);
  proxy.cut();
  const response = await answer;
  expect(response.status).toBe(200);
  await response.text();
  await Bun.sleep(300);
  proxy.restore();

  const key = budgetKey('default', setup.teamId, 'openai', utcDay(Date.now()).date);
  const reader = new RedisCounters({ url: TEST_REDIS_URL, prefix, clock: { now: () => Date.now() }, timeoutMs: 2_000 });
  const client = new RedisClient(TEST_REDIS_URL);
  try {
    let total = worst;
    let leases = 1;
    for (let attempt = 0; attempt < 40 && (total >= worst || leases > 0); attempt += 1) {
      await Bun.sleep(250);
      total = await reader.get(key);
      leases = Number(await client.send('ZCARD', [`${prefix}l:${key}`]));
    }
    // The real cost of a two-word answer, far below the worst case of 1000 output tokens, and not zero.
    expect(leases).toBe(0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThan(worst);
    expect(setup.gateway.output.join('\n')).toContain('budget settlement failed: retried until the counters take it');
  } finally {
    reader.close();
    client.close();
  }
}, 30_000);
