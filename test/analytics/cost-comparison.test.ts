// GET /v1/analytics/cost-comparison, as PRODUCT.md defines it: provider costs are list price × the
// account's routing cost_weights, platform fees the operator's byok_fee_percent of them, the
// ParrotRouter total list price × (1 + platform_markup_percent / 100); unpriced requests are counted,
// never priced at $0.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { unservedRecord, usageRecord } from '../helpers/usage-record.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
let gateway: TestGateway;
let adminKey: string;

function row(provider: string | null, costUsd: number | null, accountId = 'default', daysAgo = 1): UsageRecord {
  const when = { accountId, gatewayKeyId: 'key_compare', requestedModel: 'some-model', outputTokens: 50, latencyMs: 100 };
  const createdAt = new Date(NOW - daysAgo * 86_400_000).toISOString();
  if (provider === null) return unservedRecord({ ...when, createdAt });
  return usageRecord({ ...when, provider, model: `${provider}-model`, providerKeyId: 'pk_compare', costUsd, createdAt });
}

interface Comparison {
  requests: number;
  unpriced_requests: number;
  list_price: number;
  byok: { provider_costs: number; platform_fees: number; total: number };
  parrotrouter: { total: number };
  savings: number;
  savings_percentage: number;
  by_provider: Array<{ name: string; list_price: number; cost_weight: number; unpriced_requests: number; byok: { provider_costs: number } }>;
}

async function compare(key = adminKey, query = 'period=last_30_days'): Promise<Comparison> {
  const response = await call(gateway, 'GET', `/v1/analytics/cost-comparison?${query}`, undefined, { key });
  const body = (await response.json()) as Comparison;
  if (response.status !== 200) throw new Error(`cost comparison answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

async function put(path: string, body: unknown, key: string): Promise<void> {
  const response = await call(gateway, 'PUT', path, body, { key });
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
}

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  await gateway.runtime.store.insertUsage([
    row('openai', 10),
    row('openai', 30),
    row('anthropic', 20),
    row('anthropic', null), // served, unpriced
    row(null, null), // refused: costs nothing, not "unpriced"
    row('openai', 1000, 'default', 45), // outside the last 30 days
    row('openai', 500, 'acct_elsewhere'), // another account
  ]);
});

afterAll(async () => {
  await gateway.stop();
});

describe('GET /v1/analytics/cost-comparison', () => {
  test('defaults: cost weight 1, no BYOK fee, a 5% platform markup', async () => {
    const answer = await compare();
    expect(answer.requests).toBe(4);
    expect(answer.unpriced_requests).toBe(1);
    expect(answer.list_price).toBeCloseTo(60, 8);
    expect(answer.byok).toEqual({ provider_costs: 60, platform_fees: 0, total: 60, fee_percent: 0 } as never);
    expect(answer.parrotrouter.total).toBeCloseTo(63, 8);
    expect(answer.savings).toBeCloseTo(3, 8);
    expect(answer.savings_percentage).toBeCloseTo((3 / 63) * 100, 2);
  });

  test("the account's cost_weights and the operator's fee and markup, per provider and in total", async () => {
    await put('/v1/settings/routing', { routing: { strategy: 'cost_optimized', cost_weights: { openai: 0.8, anthropic: 1.1 } } }, adminKey);
    await put('/v1/platform/settings', { platform_markup_percent: 12.5, byok_fee_percent: 3 }, OPERATOR_KEY);
    const answer = await compare();
    // openai 40 × 0.8 = 32; anthropic 20 × 1.1 = 22 → 54; fees 3% = 1.62; BYOK 55.62; platform 60 × 1.125 = 67.5.
    expect(answer.byok.provider_costs).toBeCloseTo(54, 8);
    expect(answer.byok.platform_fees).toBeCloseTo(1.62, 8);
    expect(answer.byok.total).toBeCloseTo(55.62, 8);
    expect(answer.parrotrouter.total).toBeCloseTo(67.5, 8);
    expect(answer.savings).toBeCloseTo(11.88, 8);
    expect(answer.savings_percentage).toBeCloseTo(17.6, 2);
    const openai = answer.by_provider.find((provider) => provider.name === 'openai');
    const anthropic = answer.by_provider.find((provider) => provider.name === 'anthropic');
    expect(openai).toMatchObject({ list_price: 40, cost_weight: 0.8, unpriced_requests: 0 });
    expect(openai?.byok.provider_costs).toBeCloseTo(32, 8);
    expect(anthropic).toMatchObject({ list_price: 20, cost_weight: 1.1, unpriced_requests: 1 });
  });

  test('BYOK can cost more than platform keys: negative savings, reported as such', async () => {
    await put('/v1/settings/routing', { routing: { strategy: 'cost_optimized', cost_weights: { openai: 2, anthropic: 2 } } }, adminKey);
    await put('/v1/platform/settings', { platform_markup_percent: 0, byok_fee_percent: 0 }, OPERATOR_KEY);
    const answer = await compare();
    expect(answer.byok.total).toBeCloseTo(120, 8);
    expect(answer.parrotrouter.total).toBeCloseTo(60, 8);
    expect(answer.savings).toBeCloseTo(-60, 8);
    expect(answer.savings_percentage).toBeCloseTo(-100, 2);
  });

  test('a period with no usage compares zero with zero', async () => {
    const answer = await compare(adminKey, 'start=2020-01-01&end=2020-02-01');
    expect({
      requests: answer.requests,
      byok: answer.byok.total,
      parrotrouter: answer.parrotrouter.total,
      savings: answer.savings,
      percentage: answer.savings_percentage,
    }).toEqual({
      requests: 0,
      byok: 0,
      parrotrouter: 0,
      savings: 0,
      percentage: 0,
    });
  });
});
