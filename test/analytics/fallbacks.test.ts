// Requests served after a failed attempt are counted as `fallback_requests` in every figure of
// GET /v1/analytics/byok (the dashboard's Overview shows today's); refused requests and requests served
// at the first attempt are not.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { unservedRecord, usageRecord } from '../helpers/usage-record.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
let gateway: TestGateway;

function row(provider: string | null, fallbackAttempts: number): UsageRecord {
  const createdAt = new Date(NOW - 60_000).toISOString();
  if (provider === null) return unservedRecord({ status: 502, errorCode: 'upstream_error', fallbackAttempts, createdAt });
  return usageRecord({ provider, model: `${provider}-model`, fallbackAttempts, createdAt });
}

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  // Two batches, so the fold adds to buckets it made before.
  await gateway.runtime.store.insertUsage([row('openai', 0), row('openai', 1), row('anthropic', 2)]);
  await gateway.runtime.store.insertUsage([row('openai', 1), row(null, 2), row('anthropic', 0)]);
});

afterAll(async () => {
  await gateway.stop();
});

test('served after a failed attempt: counted in the totals and per provider; refusals and first-attempt answers are not', async () => {
  const response = await call(gateway, 'GET', '/v1/analytics/byok?period=today&group_by=provider', undefined, { key: gateway.defaultAdminKey });
  expect(response.status).toBe(200);
  const answer = (await response.json()) as { fallback_requests: number; by_provider: Array<{ name: string; fallback_requests: number; requests: number }> };
  expect(answer.fallback_requests).toBe(3);
  const byName = Object.fromEntries(answer.by_provider.map((entry) => [entry.name, entry]));
  expect(byName.openai).toMatchObject({ requests: 3, fallback_requests: 2 });
  expect(byName.anthropic).toMatchObject({ requests: 2, fallback_requests: 1 });
});
