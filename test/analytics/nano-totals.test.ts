// Analytics, the cost comparison, `GET /v1/usage/me` and the billing export read the same rows, booked to
// the nano-dollar: they must give the same figure. QA19 (qa-cost): analytics rounded to 1e-8 while the
// export kept the nano-dollar, so seven gpt-4o-mini calls with cached reads ($0.000001275 each) read
// $0.00000893 in analytics and $0.000008925 in the export, and a total differed from the sum of its own
// entries.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { usageRecord } from '../helpers/usage-record.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
const BOOKED = new Date(NOW - 60_000).toISOString();
/** gpt-4o-mini, 4 uncached and 3 cached input tokens, 1 output token: a ninth decimal. */
const MINI_COST = 0.000001275;
const MINI_ROWS = 7;
/** gpt-4o, another model: its entry is rounded apart from the first one's. */
const FOUR_O_COST = 0.000067505;
const FOUR_O_ROWS = 2;

let gateway: TestGateway;
let adminKey: string;

async function getJson(path: string): Promise<Record<string, unknown>> {
  const response = await call(gateway, 'GET', path, undefined, { key: adminKey });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  const rows = [
    ...Array.from({ length: MINI_ROWS }, () => usageRecord({ gatewayKeyId: 'key_default_admin', model: 'gpt-4o-mini', costUsd: MINI_COST, createdAt: BOOKED })),
    ...Array.from({ length: FOUR_O_ROWS }, () => usageRecord({ gatewayKeyId: 'key_default_admin', model: 'gpt-4o', costUsd: FOUR_O_COST, createdAt: BOOKED })),
  ];
  await gateway.runtime.store.insertUsage(rows);
});

afterAll(async () => {
  await gateway.stop();
});

describe('money is the nano-dollar sum of the rows on every surface', () => {
  const miniTotal = 0.000008925;
  const fourOTotal = 0.00013501;
  const total = 0.000143935;

  test('analytics: totals and every entry keep the nano-dollar, and the entries add up to the total', async () => {
    const answer = await getJson('/v1/analytics/byok?period=current_month&group_by=model');
    expect(answer.estimated_costs).toBe(total);
    const byModel = answer.by_model as Array<{ name: string; estimated_cost: number }>;
    expect(byModel.find((entry) => entry.name === 'gpt-4o-mini')?.estimated_cost).toBe(miniTotal);
    expect(byModel.find((entry) => entry.name === 'gpt-4o')?.estimated_cost).toBe(fourOTotal);
  });

  test('the billing export says the same', async () => {
    const response = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { period: 'current_month', format: 'json', include: ['model_breakdown'] },
      { key: adminKey },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { totals: { cost_usd: number }; model_breakdown: Array<{ model: string; cost_usd: number }> };
    expect(body.totals.cost_usd).toBe(total);
    expect(body.model_breakdown.find((entry) => entry.model === 'gpt-4o-mini')?.cost_usd).toBe(miniTotal);
  });

  test('the cost comparison and the caller’s own usage too', async () => {
    const comparison = await getJson('/v1/analytics/cost-comparison?period=current_month');
    expect(comparison.list_price).toBe(total);
    expect((comparison.byok as { provider_costs: number }).provider_costs).toBe(total);
    const mine = await getJson('/v1/usage/me?period=current_month');
    expect((mine.totals as { cost_usd: number }).cost_usd).toBe(total);
    const byModel = mine.by_model as Array<{ model: string; cost_usd: number }>;
    expect(byModel.find((entry) => entry.model === 'gpt-4o-mini')?.cost_usd).toBe(miniTotal);
  });
});
