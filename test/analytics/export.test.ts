// POST /v1/billing/export over HTTP: RFC 4180 CSV (strictly parsed back), spreadsheet formula
// injection neutralised while numbers stay numbers, JSON with the seed's include options, streamed in
// pages, and totals that add up to the rows.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { parseCsv } from './csv-reader.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
const ROWS = 4_500;
const NASTY_TAGS = ['=SUM(A1:A9)', '+cmd|" /C calc"!A0', '@SUM(1)', '\tTAB', '\rCR', '-2+3', '－1+1', 'a,b', 'say "hi"', 'two\nlines', '-5', '-0.25', 'plain'];
let gateway: TestGateway;
let adminKey: string;
const inserted: UsageRecord[] = [];

function row(index: number): UsageRecord {
  const refused = index % 17 === 0;
  const unpriced = !refused && index % 23 === 0;
  return {
    requestId: `req_export_${index}`,
    accountId: index % 10 === 9 ? 'acct_someone_else' : 'default',
    gatewayKeyId: `key_${index % 4}`,
    teamId: index % 3 === 0 ? null : `team_${index % 2}`,
    projectTag: NASTY_TAGS[index % NASTY_TAGS.length] as string,
    endpoint: 'chat',
    provider: refused ? null : index % 2 === 0 ? 'openai' : 'anthropic',
    model: refused ? null : index % 2 === 0 ? 'gpt-4o' : 'claude-sonnet-4-5-20250929',
    requestedModel: index % 5 === 0 ? '=IMPORTXML("http://x")' : 'gpt-4o',
    providerKeyId: refused ? null : 'pk_export',
    byok: !refused && index % 7 !== 0,
    status: refused ? 403 : 200,
    errorCode: refused ? 'model_not_allowed' : null,
    inputTokens: 100 + (index % 50),
    outputTokens: 20 + (index % 30),
    cachedInputTokens: index % 4,
    cacheWriteTokens: index % 3,
    cacheWrite1hTokens: index % 2,
    reasoningTokens: index % 5,
    costUsd: refused || unpriced ? null : (index % 97) / 1e5,
    latencyMs: 10 + (index % 300),
    streamed: index % 2 === 0,
    fallbackAttempts: 0,
    // Ten seconds apart, ending just before now, some sharing an instant.
    createdAt: new Date(NOW - 1_000 - Math.floor(index / 2) * 10_000).toISOString(),
  };
}

type CsvRecord = Record<string, string>;

async function exportCsv(body: Record<string, unknown>): Promise<{ response: Response; records: CsvRecord[]; header: string[] }> {
  const response = await call(gateway, 'POST', '/v1/billing/export', { format: 'csv', ...body }, { key: adminKey });
  expect(response.status).toBe(200);
  const table = parseCsv(await response.text());
  const header = table[0] as string[];
  return { response, header, records: table.slice(1).map((cells) => Object.fromEntries(header.map((column, index) => [column, cells[index] as string]))) };
}

const mine = (predicate: (record: UsageRecord) => boolean = () => true) => inserted.filter((record) => record.accountId === 'default' && predicate(record));
const byok = (record: UsageRecord) => record.provider !== null && record.byok;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  for (let index = 0; index < ROWS; index++) inserted.push(row(index));
  // Inserted newest first, in batches: the export must still come out in time order.
  for (let start = 0; start < ROWS; start += 500) await gateway.runtime.store.insertUsage(inserted.slice(start, start + 500));
});

afterAll(async () => {
  await gateway.stop();
});

describe('CSV', () => {
  test('one RFC 4180 table: every byok row of the period, in time order, with a total', async () => {
    const { response, header, records } = await exportCsv({ type: 'byok_usage', period: 'last_30_days' });
    expect(response.headers.get('content-type')).toStartWith('text/csv');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="keyway-default-byok_usage-2026-10-14-to-2026-11-13.csv"');
    expect(header.slice(0, 3)).toEqual(['record_type', 'created_at', 'hour']);
    const usage = records.filter((record) => record.record_type === 'usage');
    const want = mine(byok);
    expect(usage.map((record) => record.request_id).sort()).toEqual(want.map((record) => record.requestId).sort());
    const times = usage.map((record) => record.created_at);
    expect(times).toEqual([...times].sort());
    const total = records.filter((record) => record.record_type === 'total');
    expect(total).toHaveLength(1);
    expect(Number(total[0]?.requests)).toBe(want.length);
    expect(Number(total[0]?.cost_usd)).toBeCloseTo(
      want.reduce((sum, record) => sum + (record.costUsd ?? 0), 0),
      8,
    );
  });

  test('text a spreadsheet would run as a formula starts with an apostrophe; numbers and plain text are untouched', async () => {
    const { records } = await exportCsv({ type: 'all_usage', period: 'last_30_days' });
    const tags = new Set(records.filter((record) => record.record_type === 'usage').map((record) => record.project_tag));
    expect([...tags].sort()).toEqual(
      ["'=SUM(A1:A9)", `'+cmd|" /C calc"!A0`, "'@SUM(1)", "'\tTAB", "'\rCR", "'-2+3", "'－1+1", 'a,b', 'say "hi"', 'two\nlines', '-5', '-0.25', 'plain'].sort(),
    );
    const models = new Set(records.filter((record) => record.record_type === 'usage').map((record) => record.requested_model));
    expect([...models].sort()).toEqual(['\'=IMPORTXML("http://x")', 'gpt-4o']);
    for (const record of records) {
      for (const [column, value] of Object.entries(record)) {
        if (/^[=+@\t\r]/.test(value) || (/^-/.test(value) && !/^-\d+(\.\d+)?$/.test(value)))
          throw new Error(`${column} = ${JSON.stringify(value)} could run as a formula`);
      }
    }
  });

  test('an unpriced request has no cost (never 0) and counts as unpriced; a refused one costs 0', async () => {
    const { records } = await exportCsv({ type: 'all_usage', period: 'last_30_days' });
    const unpriced = records.find((record) => record.request_id === 'req_export_23');
    expect(unpriced).toMatchObject({ cost_usd: '', unpriced_requests: '1', provider: 'anthropic' });
    const refused = records.find((record) => record.request_id === 'req_export_17');
    expect(refused).toMatchObject({ cost_usd: '0', unpriced_requests: '0', provider: '', key_owner: '' });
    const total = records.find((record) => record.record_type === 'total');
    expect(Number(total?.unpriced_requests)).toBe(mine((record) => record.provider !== null && record.costUsd === null).length);
  });

  test("the seed's include options add breakdown rows that add up to the usage rows", async () => {
    const include = ['provider_breakdown', 'model_breakdown', 'team_breakdown', 'hourly_usage'];
    const { records } = await exportCsv({ type: 'byok_usage', period: 'last_quarter', include });
    const usage = records.filter((record) => record.record_type === 'usage');
    const want = inserted.filter(
      (record) => record.accountId === 'default' && byok(record) && record.createdAt >= '2026-07-01' && record.createdAt < '2026-10-01',
    );
    expect(usage).toHaveLength(want.length);
    for (const type of include) {
      const entries = records.filter((record) => record.record_type === type);
      const sum = entries.reduce((total, record) => total + Number(record.requests), 0);
      expect({ type, sum }).toEqual({ type, sum: usage.length });
    }
    const providers = records.filter((record) => record.record_type === 'provider_breakdown').map((record) => record.provider);
    expect(providers.sort()).toEqual([...new Set(usage.map((record) => record.provider))].sort());
    const hours = records.filter((record) => record.record_type === 'hourly_usage').map((record) => record.hour);
    expect(hours).toEqual([...hours].sort());
    expect(hours.every((hour) => /^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$/.test(hour as string))).toBe(true);
  });
});

describe('JSON', () => {
  test('rows in `data`, each include as an array, totals; unpriced costs are null', async () => {
    const response = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'all_usage', period: 'last_30_days', format: 'json', include: ['provider_breakdown', 'team_breakdown', 'hourly_usage'] },
      { key: adminKey },
    );
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('content-disposition')).toContain('.json"');
    const body = (await response.json()) as {
      object: string;
      period: { name: string };
      data: Array<{ request_id: string; cost_usd: number | null; project_tag: string; priced: boolean }>;
      provider_breakdown: Array<{ provider: string | null; requests: number }>;
      team_breakdown: Array<{ team_id: string | null; requests: number }>;
      hourly_usage: Array<{ hour: string; requests: number }>;
      totals: { requests: number; cost_usd: number; unpriced_requests: number };
    };
    expect(body.object).toBe('billing_export');
    expect(body.period.name).toBe('last_30_days');
    expect(body.data).toHaveLength(mine().length);
    expect(body.totals.requests).toBe(mine().length);
    expect(body.totals.cost_usd).toBeCloseTo(
      mine().reduce((sum, record) => sum + (record.costUsd ?? 0), 0),
      8,
    );
    // JSON is not a spreadsheet: values come out exactly as stored.
    expect(body.data.find((entry) => entry.request_id === 'req_export_0')?.project_tag).toBe('=SUM(A1:A9)');
    expect(body.data.find((entry) => entry.request_id === 'req_export_23')).toMatchObject({ cost_usd: null, priced: false });
    expect(body.provider_breakdown.reduce((sum, entry) => sum + entry.requests, 0)).toBe(mine().length);
    expect(body.team_breakdown.reduce((sum, entry) => sum + entry.requests, 0)).toBe(mine().length);
    expect(body.hourly_usage.reduce((sum, entry) => sum + entry.requests, 0)).toBe(mine().length);
  });
});

describe('streaming', () => {
  test('rows are read a page at a time by keyset, none lost or repeated where pages split rows of the same instant', async () => {
    const { exportRows } = await import('../../plugins/analytics/export.ts');
    const plan = {
      accountId: 'default',
      type: 'all_usage' as const,
      format: 'csv' as const,
      includes: [],
      from: new Date(NOW - 30 * 86_400_000),
      to: new Date(NOW),
      periodName: 'last_30_days',
    };
    const seen: string[] = [];
    let pages = 0;
    for await (const page of exportRows(gateway.runtime.store, plan, 7)) {
      expect(page.length).toBeLessThanOrEqual(7);
      pages++;
      for (const entry of page) seen.push(String(entry.request_id));
    }
    expect(pages).toBe(Math.ceil(mine().length / 7));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual(
      mine()
        .map((record) => record.requestId)
        .sort(),
    );
  });

  test('a client that leaves half way does not disturb the next export', async () => {
    const response = await call(gateway, 'POST', '/v1/billing/export', { type: 'all_usage', period: 'last_30_days' }, { key: adminKey });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel();
    const { records } = await exportCsv({ type: 'all_usage', period: 'last_30_days' });
    expect(records.filter((record) => record.record_type === 'usage')).toHaveLength(mine().length);
  });
});

describe('bad requests', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ type: 'invoice' }, 'type'],
    [{ format: 'xlsx' }, 'format'],
    [{ include: ['provider_breakdown', 'everything'] }, 'include[1]'],
    [{ include: 'provider_breakdown' }, 'include'],
    [{ period: 'forever' }, 'period'],
  ];
  for (const [body, param] of cases) {
    test(`${JSON.stringify(body)} → 400 on ${param}`, async () => {
      const error = await expectSpecError(await call(gateway, 'POST', '/v1/billing/export', body, { key: adminKey }), 400, 'invalid_field');
      expect(error.error.param).toBe(param);
    });
  }

  test('no body at all asks for the defaults, as {} does: byok_usage, current_month, CSV', async () => {
    const extraHeaders: Array<Record<string, string>> = [{}, { 'content-type': 'application/json' }];
    for (const headers of extraHeaders) {
      const response = await fetch(`${gateway.url}/v1/billing/export`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, ...headers } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-disposition')).toContain('-byok_usage-2026-11-01-to-2026-11-30.csv"');
      const table = parseCsv(await response.text());
      const usage = table.filter((cells) => cells[0] === 'usage');
      expect(usage).toHaveLength(mine((record) => byok(record) && record.createdAt >= '2026-11-01').length);
    }
  });

  test('an unknown field, or a body that is not JSON, is a 400', async () => {
    const unknown = await call(gateway, 'POST', '/v1/billing/export', { type: 'byok_usage', colour: 'blue' }, { key: adminKey });
    expect(unknown.status).toBe(400);
    await expectSpecError(await call(gateway, 'POST', '/v1/billing/export', '{"type":', { key: adminKey }), 400, 'invalid_json');
  });
});
