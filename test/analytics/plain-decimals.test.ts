// Money in one plain decimal format, over HTTP: the billing export (CSV and JSON), GET
// /v1/analytics/byok and GET /v1/analytics/cost-comparison never write an exponent (QA: a CSV row read
// `…,0.000008,1.426,1.6e-7,…`, its platform_fees in exponent notation beside a decimal billed_cost), for
// tiny and huge figures alike, and sums carry no float noise (0.1 + 0.2 is 0.3).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { usageRecord } from '../helpers/usage-record.ts';
import { parseCsv } from './csv-reader.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
const YESTERDAY = new Date(NOW - 86_400_000).toISOString();
/** A number written with an exponent, anywhere in a text: 1.6e-7, 1e-8, 2.5e+21. */
// A number written with an exponent; not inside an id (`pk_…3E8…`), which random ids may spell.
const EXPONENT = /(?<![\w.])\d+(?:\.\d+)?[eE][-+]?\d/;

let gateway: TestGateway;
let adminKey: string;
let hugeAccount: string;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  const account = await call(gateway, 'POST', '/v1/accounts', { name: 'Huge Co' }, { key: OPERATOR_KEY });
  expect(account.status).toBe(201);
  hugeAccount = ((await account.json()) as { id: string }).id;
  await gateway.runtime.store.insertUsage([
    // A platform-key row: 5 % of $0.0000032 is $0.00000016, which JavaScript writes 1.6e-7.
    usageRecord({ requestId: 'req_tiny_fee', byok: false, model: 'gpt-4o-mini', costUsd: 0.0000032, createdAt: YESTERDAY }),
    usageRecord({ requestId: 'req_tenth', costUsd: 0.1, createdAt: YESTERDAY }),
    usageRecord({ requestId: 'req_fifth', costUsd: 0.2, createdAt: YESTERDAY }),
    usageRecord({ requestId: 'req_cent_millionth', costUsd: 0.00000001, createdAt: YESTERDAY }),
    // The cost comparison's saving on it is 5 % of its list price: $0.00000016 again.
    usageRecord({ requestId: 'req_tiny_anthropic', provider: 'anthropic', model: 'claude-haiku-4-5', costUsd: 0.0000032, createdAt: YESTERDAY }),
    // Huge figures: JavaScript writes 1e21 and up with an exponent too.
    usageRecord({ requestId: 'req_huge', accountId: hugeAccount, byok: false, costUsd: 2.5e21, createdAt: YESTERDAY }),
  ]);
});

afterAll(async () => {
  await gateway.stop();
});

async function exportText(format: 'csv' | 'json', accountId?: string): Promise<string> {
  const body = {
    type: 'all_usage',
    period: 'current_month',
    format,
    include: ['provider_breakdown', 'daily_usage'],
    ...(accountId ? { account_id: accountId } : {}),
  };
  const response = await call(gateway, 'POST', '/v1/billing/export', body, { key: accountId ? OPERATOR_KEY : adminKey });
  expect(response.status).toBe(200);
  return response.text();
}

async function answerText(path: string, key = adminKey): Promise<string> {
  const response = await call(gateway, 'GET', path, undefined, { key });
  expect(response.status).toBe(200);
  return response.text();
}

function csvRecords(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text);
  return rows.map((row) => Object.fromEntries((header as string[]).map((column, index) => [column, row[index] ?? ''])));
}

describe('plain decimals, never exponents', () => {
  test('CSV: tiny fees and costs in decimals, exact sums', async () => {
    const text = await exportText('csv');
    expect(text).not.toMatch(EXPONENT);
    const records = csvRecords(text);
    const row = (id: string) => records.find((record) => record.request_id === id);
    expect(row('req_tiny_fee')).toMatchObject({ cost_usd: '0.0000032', platform_fees: '0.00000016', billed_cost: '0.00000336' });
    expect(row('req_cent_millionth')).toMatchObject({ cost_usd: '0.00000001', platform_fees: '0', billed_cost: '0.00000001' });
    // 0.1 + 0.2 + 2 × 0.0000032 + 0.00000001, exactly: no 0.30000000000000004.
    expect(records.find((record) => record.record_type === 'total')).toMatchObject({
      cost_usd: '0.30000641',
      platform_fees: '0.00000016',
      billed_cost: '0.30000657',
    });
  });

  test('JSON: the same figures, written as plain numbers', async () => {
    const text = await exportText('json');
    expect(text).not.toMatch(EXPONENT);
    expect(text).toContain('"platform_fees":0.00000016,"billed_cost":0.00000336');
    const file = JSON.parse(text) as { data: Array<Record<string, unknown>>; totals: Record<string, unknown> };
    expect(file.data.find((row) => row.request_id === 'req_cent_millionth')).toMatchObject({ cost_usd: 1e-8 });
    expect(file.totals).toMatchObject({ cost_usd: 0.30000641, platform_fees: 1.6e-7, billed_cost: 0.30000657 });
  });

  test('analytics and the cost comparison answer in plain decimals', async () => {
    const analytics = await answerText('/v1/analytics/byok?period=current_month&group_by=provider,model,key,day,hour');
    expect(analytics).not.toMatch(EXPONENT);
    expect(analytics).toContain('"platform_fees":0.00000016');
    const comparison = await answerText('/v1/analytics/cost-comparison?period=current_month');
    expect(comparison).not.toMatch(EXPONENT);
    // Anthropic's one row: $0.00000336 through the platform against $0.0000032 on the account's own key.
    expect(comparison).toContain('"savings":0.00000016');
    const anthropic = (JSON.parse(comparison) as { by_provider: Array<Record<string, unknown>> }).by_provider.find((entry) => entry.name === 'anthropic');
    expect(anthropic).toMatchObject({ list_price: 0.0000032, savings: 1.6e-7 });
  });

  test('huge figures too, in the export and in analytics', async () => {
    for (const format of ['csv', 'json'] as const) {
      const text = await exportText(format, hugeAccount);
      expect({ format, exponent: EXPONENT.test(text) }).toEqual({ format, exponent: false });
      expect(text).toContain('2500000000000000000000');
    }
    const analytics = await answerText(`/v1/analytics/byok?period=current_month&account_id=${hugeAccount}`, OPERATOR_KEY);
    expect(analytics).not.toMatch(EXPONENT);
    expect(analytics).toContain('"estimated_costs":2500000000000000000000');
    expect(await answerText(`/v1/analytics/cost-comparison?period=current_month&account_id=${hugeAccount}`, OPERATOR_KEY)).not.toMatch(EXPONENT);
  });
});
