// The operator's fees in analytics and the billing export: costs stay the provider's list price, and
// `platform_fees` (the markup on platform-key rows, the BYOK fee on the account's own-key rows) and
// `billed_cost` (cost + fees) come beside them, at the rates in force when each row was booked (QA18:
// a rate set today used to rewrite what earlier rows, a closed period's included, were billed).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { usageRecord } from '../helpers/usage-record.ts';
import { parseCsv } from './csv-reader.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
const YESTERDAY = new Date(NOW - 86_400_000).toISOString();
/** Rows booked after every fee change of these tests (the clock stands at NOW): billed at the latest rates. */
const LATER = new Date(NOW + 60_000).toISOString();
/** The QA report's platform-key request: gpt-4o-mini, 5 input and 4 output tokens. */
const PLATFORM_COST = 0.00000315;
const BYOK_COST = 0.002;

let gateway: TestGateway;
let adminKey: string;

type Answer = Record<string, unknown> & { by_provider: Array<Record<string, unknown>> };

async function analytics(): Promise<Answer> {
  const response = await call(gateway, 'GET', '/v1/analytics/byok?period=current_month&group_by=provider', undefined, { key: adminKey });
  expect(response.status).toBe(200);
  return (await response.json()) as Answer;
}

async function exportFile(format: 'csv' | 'json'): Promise<Response> {
  const response = await call(
    gateway,
    'POST',
    '/v1/billing/export',
    { type: 'all_usage', period: 'current_month', format, include: ['provider_breakdown'] },
    { key: adminKey },
  );
  expect(response.status).toBe(200);
  return response;
}

async function setFees(platform_markup_percent: number, byok_fee_percent: number): Promise<void> {
  const response = await call(gateway, 'PUT', '/v1/platform/settings', { platform_markup_percent, byok_fee_percent }, { key: OPERATOR_KEY });
  expect(response.status).toBe(200);
}

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  await gateway.runtime.store.insertUsage([
    usageRecord({ requestId: 'req_platform', provider: 'openai', model: 'gpt-4o-mini', byok: false, costUsd: PLATFORM_COST, createdAt: LATER }),
    usageRecord({ requestId: 'req_byok', provider: 'anthropic', model: 'claude-sonnet-4-5-20250929', byok: true, costUsd: BYOK_COST, createdAt: LATER }),
    usageRecord({ requestId: 'req_unpriced', provider: 'openai', model: 'ft:gpt-4o:acme', byok: false, costUsd: null, createdAt: LATER }),
  ]);
});

afterAll(async () => {
  await gateway.stop();
});

describe('fees beside list-price costs', () => {
  test('defaults: a 5% markup on platform-key rows, no BYOK fee', async () => {
    const answer = await analytics();
    expect(answer.fee_rates).toEqual({ platform_markup_percent: 5, byok_fee_percent: 0 });
    expect(answer.estimated_costs).toBeCloseTo(PLATFORM_COST + BYOK_COST, 10);
    // Analytics rounds money to 1e-8 USD (docs/analytics.md), fees included.
    expect(answer.platform_fees).toBeCloseTo(PLATFORM_COST * 0.05, 7);
    expect(answer.billed_costs).toBeCloseTo(PLATFORM_COST * 1.05 + BYOK_COST, 7);
  });

  test("analytics: the operator's markup on platform rows and BYOK fee on own-key rows, in the totals and per entry", async () => {
    await setFees(10, 2.5);
    const answer = await analytics();
    expect(answer.fee_rates).toEqual({ platform_markup_percent: 10, byok_fee_percent: 2.5 });
    // The list price is what the providers bill, unchanged by the fees.
    expect(answer.platform_estimated_costs).toBeCloseTo(PLATFORM_COST, 10);
    expect(answer.byok_estimated_costs).toBeCloseTo(BYOK_COST, 10);
    const fees = PLATFORM_COST * 0.1 + BYOK_COST * 0.025;
    expect(answer.platform_fees).toBeCloseTo(fees, 7);
    expect(answer.billed_costs).toBeCloseTo(PLATFORM_COST + BYOK_COST + fees, 7);
    const openai = answer.by_provider.find((entry) => entry.name === 'openai');
    // $0.00000315 × 1.1 = $0.000003465, the QA report's expected marked-up figure; the unpriced row adds nothing.
    expect(openai).toMatchObject({ estimated_cost: PLATFORM_COST, unpriced_requests: 1 });
    expect(openai?.billed_cost).toBeCloseTo(0.000003465, 7);
    expect(answer.by_provider.find((entry) => entry.name === 'anthropic')?.billed_cost).toBeCloseTo(0.00205, 8);
  });

  test('JSON export: the rates, each row and each breakdown with its fees, totals that add up', async () => {
    await setFees(10, 2.5);
    const body = (await (await exportFile('json')).json()) as {
      fee_rates: Record<string, number>;
      data: Array<Record<string, unknown>>;
      provider_breakdown: Array<Record<string, unknown>>;
      totals: Record<string, number>;
    };
    expect(body.fee_rates).toEqual({ platform_markup_percent: 10, byok_fee_percent: 2.5 });
    const row = (id: string) => body.data.find((entry) => entry.request_id === id);
    expect(row('req_platform')).toMatchObject({ cost_usd: PLATFORM_COST, key_owner: 'platform' });
    // Rows keep the nano-dollar, as costs are booked.
    expect(row('req_platform')?.billed_cost).toBe(0.000003465);
    expect(row('req_byok')?.platform_fees).toBeCloseTo(0.00005, 10);
    expect(row('req_unpriced')).toMatchObject({ cost_usd: null, platform_fees: null, billed_cost: null });
    expect(body.totals.cost_usd).toBeCloseTo(PLATFORM_COST + BYOK_COST, 10);
    expect(body.totals.billed_cost).toBeCloseTo(0.000003465 + 0.00205, 8);
    expect(body.provider_breakdown.find((entry) => entry.provider === 'anthropic')?.billed_cost).toBeCloseTo(0.00205, 10);
  });

  test("a file adds up to itself: the totals' fees are its rows' fees summed, not a fee on the summed cost", async () => {
    await setFees(5, 0);
    // 2,000 platform rows whose 5 % markup is 61.72835 nano-dollars each: rounded per row to 62.
    const day = new Date(NOW - 3 * 86_400_000).toISOString().slice(0, 10);
    const rows = Array.from({ length: 2000 }, (_, index) =>
      usageRecord({
        requestId: `req_sum_${index}`,
        provider: 'openai',
        model: 'gpt-4o-mini',
        byok: false,
        costUsd: 0.000001234567,
        createdAt: `${day}T10:00:00.000Z`,
      }),
    );
    await gateway.runtime.store.insertUsage(rows);
    const response = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'all_usage', start: `${day}T00:00:00Z`, end: `${day}T23:59:59Z`, format: 'json', include: ['daily_usage'] },
      { key: adminKey },
    );
    const body = (await response.json()) as {
      data: Array<{ platform_fees: number; billed_cost: number }>;
      totals: Record<string, number>;
      daily_usage: Array<Record<string, number>>;
    };
    expect(body.data).toHaveLength(2000);
    const feesOfRows = body.data.reduce((sum, row) => sum + row.platform_fees, 0);
    const billedOfRows = body.data.reduce((sum, row) => sum + row.billed_cost, 0);
    expect(Math.abs((body.totals.platform_fees ?? Number.NaN) - feesOfRows)).toBeLessThan(1e-9);
    expect(Math.abs((body.totals.billed_cost ?? Number.NaN) - billedOfRows)).toBeLessThan(1e-9);
    expect(Math.abs((body.daily_usage[0]?.platform_fees ?? 0) - feesOfRows)).toBeLessThan(1e-9);
  });

  test('CSV export: platform_fees and billed_cost columns, at the end, on every row', async () => {
    await setFees(10, 2.5);
    const [header, ...rows] = parseCsv(await (await exportFile('csv')).text()) as string[][];
    // team_name came after them (docs/analytics.md): every column keeps its position once added.
    expect((header as string[]).slice(-4)).toEqual(['latency_ms', 'platform_fees', 'billed_cost', 'team_name']);
    const records = rows.map((cells) => Object.fromEntries((header as string[]).map((column, index) => [column, cells[index] ?? ''])));
    const platform = records.find((record) => record.request_id === 'req_platform');
    expect(Number(platform?.billed_cost)).toBeCloseTo(0.000003465, 10);
    expect(records.find((record) => record.request_id === 'req_unpriced')).toMatchObject({ cost_usd: '', platform_fees: '', billed_cost: '' });
    const usage = records.filter((record) => record.record_type === 'usage');
    const total = records.find((record) => record.record_type === 'total');
    const summed = usage.reduce((sum, record) => sum + Number(record.billed_cost), 0);
    expect(Number(total?.billed_cost)).toBeCloseTo(summed, 8);
  });
});

describe('fees apply from when they are set (QA18)', () => {
  test('rows booked before a change keep the rates of their time, in analytics (every list) and in the export', async () => {
    // Booked yesterday, before any change of these tests (all at NOW): the defaults (5 % markup, no BYOK
    // fee) were in force then. The operator then sets 10/25.
    await gateway.runtime.store.insertUsage([
      usageRecord({
        requestId: 'req_old_platform',
        provider: 'openai',
        model: 'gpt-4o-mini',
        byok: false,
        costUsd: 0.001,
        createdAt: YESTERDAY,
        projectTag: 'closed',
      }),
      usageRecord({
        requestId: 'req_old_byok',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5-20250929',
        byok: true,
        costUsd: 0.004,
        createdAt: YESTERDAY,
        projectTag: 'closed',
      }),
    ]);
    const closed = `start=${YESTERDAY.slice(0, 10)}&end=${new Date(NOW - 3_600_000).toISOString()}`;
    const read = async () => {
      const response = await call(gateway, 'GET', `/v1/analytics/byok?${closed}&group_by=provider,model,team,project,key,day,hour`, undefined, {
        key: adminKey,
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const list = (answer: Record<string, unknown>, name: string) => (answer[name] as Array<Record<string, unknown>> | undefined) ?? [];
    const before = await read();
    expect(before.platform_fees).toBeCloseTo(0.00005, 10);
    await setFees(10, 25);
    const after = await read();
    expect(after.fee_rates).toEqual({ platform_markup_percent: 10, byok_fee_percent: 25 });
    // The closed period reads as it did: the same fees, the same bill, in every list.
    expect(after.platform_fees).toBe(before.platform_fees);
    expect(after.billed_costs).toBe(before.billed_costs);
    for (const name of ['by_provider', 'by_model', 'by_team', 'by_project', 'by_key', 'by_day', 'by_hour'])
      expect(list(after, name).map((entry) => entry.platform_fees)).toEqual(list(before, name).map((entry) => entry.platform_fees));

    // A period across the change: the old rows at the defaults, a row booked after it at 10/25.
    await gateway.runtime.store.insertUsage([
      usageRecord({
        requestId: 'req_new_byok',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5-20250929',
        byok: true,
        costUsd: 0.004,
        createdAt: LATER,
        projectTag: 'closed',
      }),
    ]);
    const across = `start=${YESTERDAY.slice(0, 10)}&end=${new Date(NOW + 3_600_000).toISOString()}`;
    const response = await call(gateway, 'GET', `/v1/analytics/byok?${across}&group_by=project,day`, undefined, { key: adminKey });
    const answer = (await response.json()) as Record<string, unknown>;
    const project = list(answer, 'by_project').find((entry) => entry.name === 'closed');
    expect(project?.estimated_cost).toBeCloseTo(0.009, 10);
    expect(project?.platform_fees).toBeCloseTo(0.00005 + 0.001, 10);
    // Anthropic also served the first tests' req_byok ($0.002 at LATER): 25 % of it beside the new row's.
    expect(list(answer, 'by_provider').find((entry) => entry.name === 'anthropic')?.platform_fees).toBeCloseTo(0.001 + 0.0005, 10);
    const yesterday = list(answer, 'by_day').find((entry) => entry.day === YESTERDAY.slice(0, 10));
    expect(yesterday?.platform_fees).toBeCloseTo(0.00005, 10);

    const exported = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'all_usage', start: YESTERDAY.slice(0, 10), end: new Date(NOW + 3_600_000).toISOString(), format: 'json', include: ['project_breakdown'] },
      { key: adminKey },
    );
    const file = (await exported.json()) as { data: Array<Record<string, unknown>>; project_breakdown: Array<Record<string, unknown>> };
    const row = (id: string) => file.data.find((entry) => entry.request_id === id);
    expect(row('req_old_platform')).toMatchObject({ platform_fees: 0.00005, billed_cost: 0.00105 });
    expect(row('req_old_byok')).toMatchObject({ platform_fees: 0, billed_cost: 0.004 });
    expect(row('req_new_byok')).toMatchObject({ platform_fees: 0.001, billed_cost: 0.005 });
    expect(file.project_breakdown.find((entry) => entry.project_tag === 'closed')?.platform_fees).toBeCloseTo(0.00105, 10);
  });
});
