// Usage rows inserted straight into the store in many batches (through the analytics triggers), at
// instants chosen around hour, day and period edges, read back over HTTP with a fixed clock: every
// period and every group_by must equal a brute-force sum over the rows, to the request; the roll-up
// tables must equal the rows they summarise.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { parsePeriod } from '../../core/http/kit/period.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const NOW = Date.parse('2026-11-13T15:27:41.250Z');
const DAY = 86_400_000;
let gateway: TestGateway;
let adminKey: string;
const inserted: UsageRecord[] = [];

/** A small deterministic generator, so a failure can be replayed. */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

function row(next: () => number, createdAt: number, overrides: Partial<UsageRecord> = {}): UsageRecord {
  const providers = [
    ['openai', 'gpt-4o'],
    ['openai', 'gpt-4o-mini'],
    ['anthropic', 'claude-sonnet-4-5-20250929'],
    ['google', 'gemini-2.0-flash'],
  ] as const;
  const [provider, model] = providers[Math.floor(next() * providers.length)] as (typeof providers)[number];
  const refused = next() < 0.08;
  const unpriced = !refused && next() < 0.08;
  return {
    requestId: `req_period_${inserted.length}`,
    accountId: next() < 0.15 ? 'acct_other' : 'default',
    gatewayKeyId: ['key_a', 'key_b', 'key_c'][Math.floor(next() * 3)] as string,
    teamId: next() < 0.3 ? null : (['team_x', 'team_y'][Math.floor(next() * 2)] as string),
    projectTag: next() < 0.3 ? null : (['alpha', 'beta', '=HYPERLINK("x")'][Math.floor(next() * 3)] as string),
    endpoint: 'chat',
    provider: refused ? null : provider,
    model: refused ? null : model,
    requestedModel: model,
    providerKeyId: refused ? null : 'pk_test',
    byok: !refused && next() < 0.8,
    status: refused ? 403 : next() < 0.05 ? 502 : 200,
    errorCode: refused ? 'model_not_allowed' : null,
    inputTokens: refused ? 0 : 10 + Math.floor(next() * 500),
    outputTokens: refused ? 0 : Math.floor(next() * 300),
    cachedInputTokens: Math.floor(next() * 5),
    cacheWriteTokens: Math.floor(next() * 3),
    cacheWrite1hTokens: 0,
    reasoningTokens: Math.floor(next() * 7),
    costUsd: refused || unpriced ? null : Math.round(next() * 1e6) / 1e8,
    latencyMs: Math.round(next() * 2000),
    streamed: next() < 0.5,
    fallbackAttempts: 0,
    createdAt: new Date(createdAt).toISOString(),
    ...overrides,
  };
}

/** Instants: spread over 120 days before now, plus the edges of every period and of hours and days. */
function instants(next: () => number): number[] {
  const times: number[] = [];
  for (let index = 0; index < 1500; index++) times.push(NOW - Math.floor(next() * 120 * DAY));
  const edges = [
    NOW - 30 * DAY,
    NOW - 30 * DAY - 1,
    NOW,
    NOW + 1,
    NOW - 1,
    Date.parse('2026-11-01T00:00:00Z'),
    Date.parse('2026-11-01T00:00:00Z') - 1,
    Date.parse('2026-11-13T00:00:00Z'),
    Date.parse('2026-11-13T00:00:00Z') - 1,
    Date.parse('2026-07-01T00:00:00Z'),
    Date.parse('2026-07-01T00:00:00Z') - 1,
    Date.parse('2026-10-01T00:00:00Z'),
    Date.parse('2026-10-01T00:00:00Z') - 1,
    Date.parse('2026-09-10T10:15:00Z'),
    Date.parse('2026-09-10T10:14:59.999Z'),
    Date.parse('2026-09-20T20:45:30Z'),
    Date.parse('2026-09-20T20:45:29.999Z'),
  ];
  for (const edge of edges) for (let copy = 0; copy < 3; copy++) times.push(edge);
  return times;
}

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, clock: new ManualClock(NOW) });
  adminKey = gateway.defaultAdminKey;
  const next = generator(42);
  const times = instants(next);
  // Many small batches, in a shuffled order: late rows must land in their own buckets too.
  for (let start = 0; start < times.length; start += 37) {
    const batch = times.slice(start, start + 37).map((time) => {
      const record = row(next, time);
      inserted.push(record);
      return record;
    });
    await gateway.runtime.store.insertUsage(batch);
  }
});

afterAll(async () => {
  await gateway.stop();
});

interface Expected {
  requests: number;
  unserved: number;
  cost: number;
  unpriced: number;
  input: number;
  latency: number;
}

function expected(list: UsageRecord[]): Expected {
  const served = list.filter((record) => record.provider !== null);
  return {
    requests: served.length,
    unserved: list.length - served.length,
    cost: served.reduce((sum, record) => sum + (record.costUsd ?? 0), 0),
    unpriced: served.filter((record) => record.costUsd === null).length,
    input: list.reduce((sum, record) => sum + record.inputTokens, 0),
    latency: served.reduce((sum, record) => sum + record.latencyMs, 0),
  };
}

function rowsIn(query: string): UsageRecord[] {
  const period = parsePeriod(new URLSearchParams(query), NOW);
  if ('error' in period) throw new Error(period.error);
  const from = period.from.toISOString();
  const to = period.to.toISOString();
  return inserted.filter((record) => record.accountId === 'default' && record.createdAt >= from && record.createdAt < to);
}

function groupBy(list: UsageRecord[], key: (record: UsageRecord) => string): Map<string, UsageRecord[]> {
  const groups = new Map<string, UsageRecord[]>();
  for (const record of list) groups.set(key(record), [...(groups.get(key(record)) ?? []), record]);
  return groups;
}

type Entry = Record<string, unknown> & { requests: number; estimated_cost: number; unpriced_requests: number; unserved_requests?: number };

const PERIODS = [
  'period=today',
  'period=current_month',
  'period=last_30_days',
  'period=last_quarter',
  'start=2026-09-10T10:15:00Z&end=2026-09-20T20:45:30Z',
  'start=2026-09-10T10:14:59.999Z&end=2026-09-10T10:15:00.001Z',
  'start=2026-08-01&end=2026-11-13T15:00:00Z',
];

describe('every period, every group_by, equals the rows', () => {
  for (const query of PERIODS) {
    test(query, async () => {
      const response = await call(gateway, 'GET', `/v1/analytics/byok?${query}&group_by=provider,model,team,project,key,day,hour`, undefined, {
        key: adminKey,
      });
      expect(response.status).toBe(200);
      const answer = (await response.json()) as Record<string, unknown> & { total_requests: number; estimated_costs: number };
      const list = rowsIn(query);
      const want = expected(list);
      expect(list.length).toBeGreaterThan(0);
      expect({ requests: answer.total_requests, unserved: answer.unserved_requests, unpriced: answer.unpriced_requests }).toEqual({
        requests: want.requests,
        unserved: want.unserved,
        unpriced: want.unpriced,
      });
      expect(answer.estimated_costs).toBeCloseTo(want.cost, 8);
      expect((answer.tokens as Record<string, number>).input).toBe(want.input);

      const checks: Array<[string, (record: UsageRecord) => string, (entry: Entry) => string, boolean]> = [
        ['by_provider', (record) => record.provider ?? '', (entry) => String(entry.name), false],
        ['by_model', (record) => `${record.provider}/${record.model}`, (entry) => `${entry.provider}/${entry.name}`, false],
        ['by_team', (record) => record.teamId ?? '', (entry) => String(entry.team_id ?? ''), true],
        ['by_project', (record) => record.projectTag ?? '', (entry) => String(entry.name ?? ''), true],
        ['by_key', (record) => record.gatewayKeyId, (entry) => String(entry.key_id), true],
        ['by_day', (record) => record.createdAt.slice(0, 10), (entry) => String(entry.day), true],
        ['by_hour', (record) => `${record.createdAt.slice(0, 13)}:00:00Z`, (entry) => String(entry.hour), true],
      ];
      for (const [name, keyOfRow, keyOfEntry, countsUnserved] of checks) {
        const source = countsUnserved ? list : list.filter((record) => record.provider !== null);
        const groups = groupBy(source, keyOfRow);
        const entries = answer[name] as Entry[];
        expect({ name, keys: entries.map(keyOfEntry).sort() }).toEqual({ name, keys: [...groups.keys()].sort() });
        for (const entry of entries) {
          const group = expected(groups.get(keyOfEntry(entry)) ?? []);
          expect({ name, key: keyOfEntry(entry), requests: entry.requests, unpriced: entry.unpriced_requests }).toEqual({
            name,
            key: keyOfEntry(entry),
            requests: group.requests,
            unpriced: group.unpriced,
          });
          if (countsUnserved) expect(entry.unserved_requests).toBe(group.unserved);
          // A group whose served requests are all unpriced has no known cost: null, never $0.
          if (group.requests > 0 && group.unpriced === group.requests)
            expect({ name, cost: entry.estimated_cost as number | null }).toEqual({ name, cost: null });
          else expect(entry.estimated_cost).toBeCloseTo(group.cost, 8);
        }
      }
    });
  }

  test('a whole-day period reads no raw row; a period inside an hour reads only raw rows', async () => {
    const { readUsageAnalytics } = await import('../../plugins/analytics/query.ts');
    const quarter = await readUsageAnalytics(gateway.runtime.store, {
      accountId: 'default',
      from: new Date('2026-07-01T00:00:00Z'),
      to: new Date('2026-10-01T00:00:00Z'),
      groups: new Set(),
    });
    expect(quarter.read.pieces.map((piece) => piece.source)).toEqual(['day']);
    expect(quarter.read.edgeRows).toBe(0);
    const inside = await readUsageAnalytics(gateway.runtime.store, {
      accountId: 'default',
      from: new Date('2026-09-10T10:14:00Z'),
      to: new Date('2026-09-10T10:16:00Z'),
      groups: new Set(),
    });
    expect(inside.read.pieces.map((piece) => piece.source)).toEqual(['rows']);
  });

  test('an edge hour is read whichever way touches fewer rows: rows inside, or its bucket minus rows outside', async () => {
    const { readUsageAnalytics } = await import('../../plugins/analytics/query.ts');
    // last_30_days ends 1 ms after now: three rows sit exactly there, outside, against many inside its hour.
    const recent = await readUsageAnalytics(gateway.runtime.store, {
      accountId: 'default',
      from: new Date(NOW - 30 * DAY),
      to: new Date(NOW + 1),
      groups: new Set(),
    });
    const taken = recent.read.pieces.filter((piece) => piece.sign === -1);
    expect(taken.map((piece) => [piece.from.toISOString(), piece.to.toISOString()])).toContainEqual([
      new Date(NOW + 1).toISOString(),
      '2026-11-13T16:00:00.000Z',
    ]);
    // 10:15:00 holds as many rows inside as 10:14:59.999 outside: the rows inside are read.
    const september = await readUsageAnalytics(gateway.runtime.store, {
      accountId: 'default',
      from: new Date('2026-09-10T10:15:00Z'),
      to: new Date('2026-09-20T20:45:30Z'),
      groups: new Set(),
    });
    expect(september.read.pieces.find((piece) => piece.source === 'rows' && piece.from.toISOString() === '2026-09-10T10:15:00.000Z')?.sign).toBe(1);
  });
});

describe('bad periods', () => {
  const cases: Array<[string, string]> = [
    ['period=yesterday', 'period'],
    ['period=', 'period'],
    ['start=13/11/2026', 'start'],
    ['start=2026-11-10&end=2026-11-01', 'end'],
    ['start=2026-11-10&end=soon', 'end'],
    ['period=today&start=2026-11-01', 'period'],
    // Impossible calendar dates and times, which Date would roll into the next day or month.
    ['start=2026-02-30', 'start'],
    ['start=2026-11-31', 'start'],
    ['start=2026-11-01&end=2027-02-29', 'end'],
    ['start=2026-11-01T24:00:00Z', 'start'],
    ['start=2026-04-31T10:00:00%2B02:00', 'start'],
    ['end=2026-12-01', 'start'],
  ];
  for (const [query, param] of cases) {
    test(`${query} → 400 invalid_request_error on ${param}`, async () => {
      for (const path of ['/v1/analytics/byok', '/v1/analytics/cost-comparison']) {
        const body = await expectSpecError(await call(gateway, 'GET', `${path}?${query}`, undefined, { key: adminKey }), 400, 'invalid_field');
        expect({ type: body.error.type, param: body.error.param }).toEqual({ type: 'invalid_request_error', param });
      }
      const exportBody = Object.fromEntries(new URLSearchParams(query));
      const exported = await expectSpecError(await call(gateway, 'POST', '/v1/billing/export', exportBody, { key: adminKey }), 400, 'invalid_field');
      expect(exported.error.param).toBe(param);
    });
  }
});

describe('calendar dates', () => {
  const message = async (path: string): Promise<{ param: string; message: string }> => {
    const body = await expectSpecError(await call(gateway, 'GET', path, undefined, { key: adminKey }), 400, 'invalid_field');
    return { param: String(body.error.param), message: body.error.message };
  };

  test('the answer names the impossible date, and says start is required when only end is given', async () => {
    expect(await message('/v1/analytics/byok?start=2026-02-30')).toEqual({
      param: 'start',
      message: "Invalid value for 'start': 2026-02-30 is not a calendar date (February 2026 has 28 days)",
    });
    expect(await message('/v1/analytics/byok?start=2026-11-01&end=2026-11-31')).toEqual({
      param: 'end',
      message: "Invalid value for 'end': 2026-11-31 is not a calendar date (November 2026 has 30 days)",
    });
    expect(await message('/v1/analytics/byok?end=2026-12-01')).toEqual({
      param: 'start',
      message: "Invalid value for 'start': start is required when end is given",
    });
  });

  test('every route that takes a period refuses them: audit logs and usage/me too', async () => {
    for (const path of ['/v1/audit-logs', '/v1/usage/me']) {
      expect({ path, ...(await message(`${path}?start=2026-11-31`)) }).toMatchObject({ path, param: 'start' });
    }
  });

  test('real dates still read as they are: a leap day, the last day of a month, an offset', () => {
    const read = (query: string) => {
      const period = parsePeriod(new URLSearchParams(query), NOW);
      return 'error' in period ? period.error : `${period.from.toISOString()} ${period.to.toISOString()}`;
    };
    expect(read('start=2028-02-29&end=2028-03-01')).toBe('2028-02-29T00:00:00.000Z 2028-03-01T00:00:00.000Z');
    expect(read('start=2026-04-30T23:59:59.999Z&end=2026-12-31')).toBe('2026-04-30T23:59:59.999Z 2026-12-31T00:00:00.000Z');
    expect(read('start=2026-01-31T10:15&end=2026-02-28T01:00:00%2B02:00')).toBe('2026-01-31T10:15:00.000Z 2026-02-27T23:00:00.000Z');
  });
});

describe('the roll-ups equal the rows they summarise, after many batches', () => {
  const tables: Array<[string, string, (record: UsageRecord) => string]> = [
    [
      'usage_summary_model_daily',
      "account_id || '|' || day || '|' || provider || '|' || model",
      (r) => `${r.accountId}|${r.createdAt.slice(0, 10)}|${r.provider ?? ''}|${r.model ?? ''}`,
    ],
    [
      'usage_summary_model_hourly',
      "account_id || '|' || hour || '|' || provider || '|' || model",
      (r) => `${r.accountId}|${r.createdAt.slice(0, 13)}|${r.provider ?? ''}|${r.model ?? ''}`,
    ],
    [
      'usage_summary_key_daily',
      "account_id || '|' || day || '|' || team_id || '|' || gateway_key_id",
      (r) => `${r.accountId}|${r.createdAt.slice(0, 10)}|${r.teamId ?? ''}|${r.gatewayKeyId}`,
    ],
    [
      'usage_summary_key_hourly',
      "account_id || '|' || hour || '|' || team_id || '|' || gateway_key_id",
      (r) => `${r.accountId}|${r.createdAt.slice(0, 13)}|${r.teamId ?? ''}|${r.gatewayKeyId}`,
    ],
    [
      'usage_summary_project_daily',
      "account_id || '|' || day || '|' || project_tag",
      (r) => `${r.accountId}|${r.createdAt.slice(0, 10)}|${r.projectTag ?? ''}`,
    ],
    [
      'usage_summary_project_hourly',
      "account_id || '|' || hour || '|' || project_tag",
      (r) => `${r.accountId}|${r.createdAt.slice(0, 13)}|${r.projectTag ?? ''}`,
    ],
    ['usage_summary_hourly', "account_id || '|' || hour", (r) => `${r.accountId}|${r.createdAt.slice(0, 13)}`],
  ];
  for (const [table, keySql, keyOfRow] of tables) {
    test(table, async () => {
      const stored = await gateway.runtime.store.query(
        `SELECT ${keySql} AS bucket, requests, unserved_requests, unpriced_requests, cost_usd, input_tokens, latency_ms_sum FROM ${table}`,
      );
      const groups = groupBy(inserted, keyOfRow);
      expect(stored.map((entry) => String(entry.bucket)).sort()).toEqual([...groups.keys()].sort());
      for (const entry of stored) {
        const want = expected(groups.get(String(entry.bucket)) ?? []);
        expect({ bucket: entry.bucket, requests: Number(entry.requests) - Number(entry.unserved_requests), unpriced: entry.unpriced_requests }).toEqual({
          bucket: entry.bucket,
          requests: want.requests,
          unpriced: want.unpriced,
        });
        expect(Number(entry.cost_usd)).toBeCloseTo(want.cost, 9);
        expect(Number(entry.input_tokens)).toBe(want.input);
        expect(Number(entry.latency_ms_sum)).toBeCloseTo(want.latency, 6);
      }
    });
  }
});
