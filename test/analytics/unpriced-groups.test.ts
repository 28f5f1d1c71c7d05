// A group made only of unpriced requests has no known cost: analytics, the billing export (JSON and
// CSV, breakdowns and totals) and the cost comparison say null (an empty CSV cell), never $0, as
// GET /v1/usage/me does. A group mixing priced and unpriced requests gives the priced requests' sum.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { unservedRecord, usageRecord } from '../helpers/usage-record.ts';
import { parseCsv } from './csv-reader.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
const DAY = 86_400_000;
const YESTERDAY = new Date(NOW - DAY).toISOString();
/** A day holding one unpriced request and nothing else. */
const LONELY_DAY = '2026-11-08';
const LONELY = `start=${LONELY_DAY}&end=2026-11-09`;
const UNPRICED_MODEL = 'ft:gpt-4o:acme';

let gateway: TestGateway;
let adminKey: string;

type Entry = Record<string, unknown> & { estimated_cost: number | null; unpriced_requests: number };

async function getJson<Body>(path: string): Promise<Body> {
  const response = await call(gateway, 'GET', path, undefined, { key: adminKey });
  const body = (await response.json()) as Body;
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

async function exportJson(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await call(gateway, 'POST', '/v1/billing/export', { type: 'all_usage', format: 'json', ...body }, { key: adminKey });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function exportCsv(body: Record<string, unknown>): Promise<Array<Record<string, string>>> {
  const response = await call(gateway, 'POST', '/v1/billing/export', { type: 'all_usage', format: 'csv', ...body }, { key: adminKey });
  expect(response.status).toBe(200);
  const [header, ...rows] = parseCsv(await response.text()) as string[][];
  return rows.map((cells) => Object.fromEntries((header as string[]).map((column, index) => [column, cells[index] ?? ''])));
}

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  const priced = { model: 'gpt-4o', gatewayKeyId: 'key_priced', projectTag: 'priced', createdAt: YESTERDAY };
  const unpriced = { gatewayKeyId: 'key_unpriced', teamId: 'team_unpriced', projectTag: 'research', costUsd: null, createdAt: YESTERDAY };
  await gateway.runtime.store.insertUsage([
    usageRecord({ ...priced, byok: true, costUsd: 0.002 }),
    usageRecord({ ...priced, byok: false, costUsd: 0.003 }),
    usageRecord({ ...unpriced, provider: 'openai', model: UNPRICED_MODEL, requestedModel: UNPRICED_MODEL }),
    usageRecord({ ...unpriced, provider: 'openai', model: UNPRICED_MODEL, requestedModel: UNPRICED_MODEL, byok: false }),
    usageRecord({ ...unpriced, provider: 'cohere', model: 'command-private', requestedModel: 'command-private' }),
    // Refused: it cost nothing, and does not make the group priced.
    unservedRecord({ gatewayKeyId: 'key_unpriced', teamId: 'team_unpriced', projectTag: 'research', createdAt: YESTERDAY }),
    usageRecord({ ...unpriced, provider: 'cohere', model: 'command-private', createdAt: `${LONELY_DAY}T09:30:00.000Z` }),
  ]);
});

afterAll(async () => {
  await gateway.stop();
});

describe('GET /v1/analytics/byok', () => {
  test('every list says null for a group made only of unpriced requests, the priced sum for a mixed one', async () => {
    const answer = await getJson<Record<string, Entry[]> & { estimated_costs: number | null }>(
      '/v1/analytics/byok?period=current_month&group_by=provider,model,team,project,key,day,hour',
    );
    const entry = (list: string, field: string, value: unknown): Entry | undefined => answer[list]?.find((item) => item[field] === value);
    const unpricedOnly = { estimated_cost: null, byok_estimated_cost: null, platform_estimated_cost: null, platform_fees: null, billed_cost: null };
    expect(entry('by_model', 'name', UNPRICED_MODEL)).toMatchObject({ ...unpricedOnly, unpriced_requests: 2 });
    expect(entry('by_provider', 'name', 'cohere')).toMatchObject({ ...unpricedOnly, unpriced_requests: 2 });
    expect(entry('by_project', 'name', 'research')).toMatchObject({ ...unpricedOnly, unpriced_requests: 4, unserved_requests: 1 });
    expect(entry('by_team', 'team_id', 'team_unpriced')).toMatchObject({ ...unpricedOnly, unpriced_requests: 4 });
    expect(entry('by_key', 'key_id', 'key_unpriced')).toMatchObject({ ...unpricedOnly, unpriced_requests: 4 });
    expect(entry('by_day', 'day', LONELY_DAY)).toMatchObject({ ...unpricedOnly, unpriced_requests: 1 });
    expect(entry('by_hour', 'hour', `${LONELY_DAY}T09:00:00Z`)).toMatchObject({ ...unpricedOnly, unpriced_requests: 1 });
    // Mixed groups and the totals: the priced requests' cost, with the unpriced ones counted beside it.
    expect(entry('by_provider', 'name', 'openai')).toMatchObject({ estimated_cost: 0.005, unpriced_requests: 2 });
    expect(entry('by_day', 'day', YESTERDAY.slice(0, 10))).toMatchObject({ estimated_cost: 0.005, unpriced_requests: 3 });
    expect(entry('by_project', 'name', 'priced')).toMatchObject({ estimated_cost: 0.005, unpriced_requests: 0 });
    expect(answer.estimated_costs).toBe(0.005);
  });

  test('a period whose served requests are all unpriced has null totals; a period with none costs 0', async () => {
    const lonely = await getJson<Record<string, unknown>>(`/v1/analytics/byok?${LONELY}`);
    expect(lonely).toMatchObject({ total_requests: 1, unpriced_requests: 1, estimated_costs: null, byok_estimated_costs: null, billed_costs: null });
    const empty = await getJson<Record<string, unknown>>('/v1/analytics/byok?start=2020-01-01&end=2020-02-01');
    expect(empty).toMatchObject({ total_requests: 0, estimated_costs: 0 });
  });
});

describe('POST /v1/billing/export', () => {
  const include = ['provider_breakdown', 'model_breakdown', 'team_breakdown', 'project_breakdown', 'key_breakdown', 'daily_usage'];

  test('JSON breakdowns say cost_usd null for unpriced-only groups; totals keep the priced sum', async () => {
    const body = await exportJson({ period: 'current_month', include });
    const entries = (name: string) => body[name] as Array<Record<string, unknown>>;
    expect(entries('model_breakdown').find((entry) => entry.model === UNPRICED_MODEL)).toMatchObject({ cost_usd: null, unpriced_requests: 2 });
    expect(entries('provider_breakdown').find((entry) => entry.provider === 'cohere')).toMatchObject({ cost_usd: null, billed_cost: null });
    expect(entries('provider_breakdown').find((entry) => entry.provider === 'openai')).toMatchObject({ cost_usd: 0.005, unpriced_requests: 2 });
    expect(entries('project_breakdown').find((entry) => entry.project_tag === 'research')).toMatchObject({ cost_usd: null, requests: 5, unpriced_requests: 4 });
    expect(entries('team_breakdown').find((entry) => entry.team_id === 'team_unpriced')).toMatchObject({ cost_usd: null });
    expect(entries('key_breakdown').find((entry) => entry.gateway_key_id === 'key_unpriced')).toMatchObject({ cost_usd: null });
    expect(entries('daily_usage').find((entry) => entry.day === LONELY_DAY)).toMatchObject({ cost_usd: null, platform_fees: null });
    expect(body.totals).toMatchObject({ cost_usd: 0.005, unpriced_requests: 4, requests: 7 });
    const lonely = await exportJson({ start: LONELY_DAY, end: '2026-11-09' });
    expect(lonely.totals).toMatchObject({ requests: 1, cost_usd: null, billed_cost: null });
  });

  test('CSV leaves the cost cell of an unpriced-only group empty, never 0', async () => {
    const records = await exportCsv({ period: 'current_month', include: ['model_breakdown', 'project_breakdown'] });
    const row = (type: string, field: string, value: string) => records.find((record) => record.record_type === type && record[field] === value);
    expect(row('model_breakdown', 'model', UNPRICED_MODEL)).toMatchObject({ cost_usd: '', billed_cost: '', unpriced_requests: '2' });
    expect(row('project_breakdown', 'project_tag', 'research')).toMatchObject({ cost_usd: '', requests: '5', unpriced_requests: '4' });
    expect(row('model_breakdown', 'model', 'gpt-4o')).toMatchObject({ cost_usd: '0.005' });
    expect(records.find((record) => record.record_type === 'total')).toMatchObject({ cost_usd: '0.005', unpriced_requests: '4', requests: '7' });
    const lonely = await exportCsv({ start: LONELY_DAY, end: '2026-11-09' });
    expect(lonely.find((record) => record.record_type === 'total')).toMatchObject({ cost_usd: '', unpriced_requests: '1' });
  });
});

describe('GET /v1/analytics/cost-comparison', () => {
  test('a provider whose requests are all unpriced has null figures; a period of unpriced requests only too', async () => {
    const answer = await getJson<{ by_provider: Array<Record<string, unknown>> } & Record<string, unknown>>(
      '/v1/analytics/cost-comparison?period=current_month',
    );
    expect(answer.by_provider.find((entry) => entry.name === 'cohere')).toMatchObject({
      unpriced_requests: 2,
      list_price: null,
      byok: { provider_costs: null, platform_fees: null, total: null },
      parrotrouter: { total: null },
      savings: null,
    });
    expect(answer.by_provider.find((entry) => entry.name === 'openai')).toMatchObject({ list_price: 0.005, unpriced_requests: 2 });
    expect(answer.list_price).toBe(0.005);
    const lonely = await getJson<Record<string, unknown>>(`/v1/analytics/cost-comparison?${LONELY}`);
    expect(lonely).toMatchObject({ requests: 1, list_price: null, savings: null, savings_percentage: null, parrotrouter: { total: null } });
  });
});
