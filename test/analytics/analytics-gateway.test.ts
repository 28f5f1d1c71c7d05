// Over HTTP, after real requests through the gateway to the simulators (OpenAI and Anthropic, streamed
// and not, an account admin, a team member with a project tag, a refused request): GET
// /v1/analytics/byok agrees with the usage rows and with POST /v1/billing/export, for every group_by;
// one account never sees another's usage; no answer and no export holds a key.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, call, expectSpecError, flushUsage, OPERATOR_KEY, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { parseCsv } from './csv-reader.ts';

const OPENAI_KEY = 'sk-proj-AnalyticsCanaryOpenAI0000000000000001';
const ANTHROPIC_KEY = 'sk-ant-api03-AnalyticsCanaryAnthropic00000000000001';
const OTHER_OPENAI_KEY = 'sk-proj-AnalyticsCanaryOtherAccount000000000002';
const WIDE = 'start=2000-01-01&end=2100-01-01';

let openai: SimulatorHandle;
let anthropic: SimulatorHandle;
let gateway: TestGateway;
let adminKey: string;
let otherAdminKey: string;
let memberKey: string;
let teamId: string;

interface Figures {
  requests: number;
  estimated_cost: number;
  unpriced_requests: number;
  byok_requests: number;
  avg_latency_ms: number | null;
  tokens: Record<string, number>;
  unserved_requests?: number;
  [field: string]: unknown;
}

type Analytics = Record<string, unknown> & {
  total_requests: number;
  estimated_costs: number;
  unserved_requests: number;
  unpriced_requests: number;
  byok_requests: number;
  tokens: Record<string, number>;
  by_provider: Array<Figures & { name: string; models_used: string[] }>;
};

async function chat(key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return call(gateway, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'Summarise the quarter.' }], ...body }, { key, headers });
}

async function analytics(query: string, key = adminKey): Promise<Analytics> {
  const response = await call(gateway, 'GET', `/v1/analytics/byok?${query}`, undefined, { key });
  const body = (await response.json()) as Analytics;
  if (response.status !== 200) throw new Error(`analytics answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

async function rows(accountId = 'default'): Promise<UsageRecord[]> {
  await flushUsage(gateway);
  return gateway.runtime.store.listUsage(accountId);
}

const served = (list: UsageRecord[]) => list.filter((row) => row.provider !== null);
const costOf = (list: UsageRecord[]) => list.reduce((sum, row) => sum + (row.costUsd ?? 0), 0);
const sumOf = (list: Figures[], field: 'requests' | 'estimated_cost' | 'unpriced_requests') => list.reduce((sum, entry) => sum + entry[field], 0);

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY, OTHER_OPENAI_KEY] });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({
    probes: false,
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_ANTHROPIC_BASE_URL: anthropic.url },
  });
  adminKey = gateway.defaultAdminKey;
  await addProviderKeys(
    gateway,
    [
      { name: 'openai', api_key: OPENAI_KEY },
      { name: 'anthropic', api_key: ANTHROPIC_KEY },
    ],
    adminKey,
  );
  const team = await call(
    gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Data Science',
      byok_permissions: { providers: { openai: { enabled: true, models: ['gpt-4o'] }, anthropic: { enabled: false } } },
      members: [{ email: 'analyst@company.com', role: 'developer', byok_access: true }],
    },
    { key: adminKey },
  );
  const teamBody = (await team.json()) as { id: string; members: Array<{ api_key: string }> };
  expect(team.status).toBe(201);
  teamId = teamBody.id;
  memberKey = teamBody.members[0]?.api_key ?? '';

  // The default account: the admin's calls (both providers, streamed and not), the member's, one refusal.
  for (const response of [
    await chat(adminKey, { model: 'gpt-4o' }),
    await chat(adminKey, { model: 'gpt-4o-mini' }),
    await chat(adminKey, { model: 'claude-sonnet-4-5-20250929', max_tokens: 50 }),
    await chat(memberKey, { model: 'gpt-4o' }, { 'x-project-tag': 'churn-model' }),
    await chat(memberKey, { model: 'gpt-4o' }, { 'x-project-tag': 'churn-model' }),
  ]) {
    expect(response.status).toBe(200);
    await response.text();
  }
  const streamed = await chat(adminKey, { model: 'gpt-4o', stream: true, stream_options: { include_usage: true } });
  expect(streamed.status).toBe(200);
  await readSse(streamed);
  const refused = await chat(memberKey, { model: 'claude-sonnet-4-5-20250929', max_tokens: 50 });
  expect(refused.status).toBe(403);
  await refused.text();

  // Another account, with its own key and usage.
  const account = await call(gateway, 'POST', '/v1/accounts', { name: 'Other Co' });
  otherAdminKey = ((await account.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OTHER_OPENAI_KEY }], otherAdminKey);
  const other = await chat(otherAdminKey, { model: 'gpt-4o' });
  expect(other.status).toBe(200);
  await other.text();
  await flushUsage(gateway);
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  await anthropic.stop();
});

describe('GET /v1/analytics/byok after real requests', () => {
  test("the seed's answer: totals equal the sum of the usage rows", async () => {
    const list = await rows();
    expect(list).toHaveLength(7);
    const answer = await analytics('period=current_month&group_by=provider,model,team');
    expect(answer.total_requests).toBe(served(list).length);
    expect(answer.total_requests).toBe(6);
    expect(answer.estimated_costs).toBeCloseTo(costOf(list), 8);
    expect(answer.estimated_costs).toBeGreaterThan(0);
    expect(answer.unserved_requests).toBe(1);
    expect(answer.byok_requests).toBe(6);
    expect(answer.unpriced_requests).toBe(0);
    expect(answer.tokens.input).toBe(list.reduce((sum, row) => sum + row.inputTokens, 0));
    expect(answer.tokens.output).toBe(list.reduce((sum, row) => sum + row.outputTokens, 0));
    for (const provider of answer.by_provider) {
      expect(Object.keys(provider)).toEqual(expect.arrayContaining(['name', 'requests', 'estimated_cost', 'avg_latency_ms', 'models_used']));
      const mine = served(list).filter((row) => row.provider === provider.name);
      expect(provider.requests).toBe(mine.length);
      expect(provider.estimated_cost).toBeCloseTo(costOf(mine), 8);
      const latency = mine.reduce((sum, row) => sum + row.latencyMs, 0) / mine.length;
      expect(provider.avg_latency_ms).toBeCloseTo(latency, 0);
      expect(provider.models_used).toEqual([...new Set(mine.map((row) => row.model as string))].sort());
    }
    expect(answer.by_provider.map((provider) => provider.name).sort()).toEqual(['anthropic', 'openai']);
    expect(answer.by_provider.find((provider) => provider.name === 'openai')?.models_used.length).toBe(2);
  });

  test('every group_by lists entries that add up to the totals', async () => {
    const answer = await analytics(`${WIDE}&group_by=provider,model,team,project,key,day,hour`);
    for (const list of ['by_provider', 'by_model', 'by_team', 'by_project', 'by_key', 'by_day', 'by_hour']) {
      const entries = answer[list] as Figures[];
      expect({ list, requests: sumOf(entries, 'requests') }).toEqual({ list, requests: answer.total_requests });
      expect(sumOf(entries, 'estimated_cost')).toBeCloseTo(answer.estimated_costs, 8);
    }
    const team = (answer.by_team as Figures[]).find((entry) => entry.team_id === teamId);
    expect(team).toMatchObject({ name: 'Data Science', requests: 2, unserved_requests: 1 });
    expect((answer.by_team as Figures[]).find((entry) => entry.team_id === null)).toMatchObject({ requests: 4, unserved_requests: 0 });
    expect((answer.by_project as Figures[]).find((entry) => entry.name === 'churn-model')?.requests).toBe(2);
    const models = (answer.by_model as Figures[]).map((entry) => `${entry.provider}/${entry.name}`).sort();
    expect(models).toEqual(['anthropic/claude-sonnet-4-5-20250929', 'openai/gpt-4o', 'openai/gpt-4o-mini']);
    const keys = answer.by_key as Figures[];
    expect(keys.map((entry) => entry.key_id).sort()).toEqual([...new Set((await rows()).map((row) => row.gatewayKeyId))].sort());
    expect(keys.every((entry) => typeof entry.masked_key === 'string' && (entry.masked_key as string).includes('…'))).toBe(true);
    const today = new Date().toISOString().slice(0, 10);
    expect((answer.by_day as Figures[]).map((entry) => entry.day)).toContain(today);
    expect((answer.by_hour as Figures[]).every((entry) => /^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$/.test(String(entry.hour)))).toBe(true);
  });

  test('an unknown group_by value or period is a 400 naming the parameter', async () => {
    const badGroup = await expectSpecError(
      await call(gateway, 'GET', '/v1/analytics/byok?group_by=provider,region', undefined, { key: adminKey }),
      400,
      'invalid_field',
    );
    expect(badGroup.error.param).toBe('group_by');
    expect(badGroup.error.type).toBe('invalid_request_error');
    const badPeriod = await expectSpecError(
      await call(gateway, 'GET', '/v1/analytics/byok?period=last_decade', undefined, { key: adminKey }),
      400,
      'invalid_field',
    );
    expect(badPeriod.error.param).toBe('period');
  });

  test('a team member or a viewer may not read account analytics', async () => {
    await expectSpecError(await call(gateway, 'GET', '/v1/analytics/byok', undefined, { key: memberKey }), 403, 'permission_denied');
    await expectSpecError(await call(gateway, 'GET', '/v1/analytics/byok', undefined, { key: '' }), 401, 'invalid_api_key');
  });
});

describe('account isolation', () => {
  test("each account admin sees only its own account's usage", async () => {
    const mine = await analytics(WIDE);
    const theirs = await analytics(WIDE, otherAdminKey);
    expect(mine.total_requests).toBe(6);
    expect(theirs.total_requests).toBe(1);
    expect(theirs.account_id).not.toBe('default');
    expect(theirs.estimated_costs).toBeCloseTo(costOf(served(await rows(String(theirs.account_id)))), 8);
  });

  test('an account key naming another account is refused; the operator may name any', async () => {
    const theirs = await analytics(WIDE, otherAdminKey);
    await expectSpecError(await call(gateway, 'GET', '/v1/analytics/byok?account_id=default', undefined, { key: otherAdminKey }), 403, 'permission_denied');
    const byOperator = await analytics(`${WIDE}&account_id=${theirs.account_id}`, OPERATOR_KEY);
    expect(byOperator.total_requests).toBe(1);
    await expectSpecError(await call(gateway, 'GET', '/v1/analytics/byok?account_id=acct_nope', undefined, { key: OPERATOR_KEY }), 404, 'not_found');
  });

  test("an export holds only the caller's account's rows", async () => {
    const response = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'all_usage', start: '2000-01-01', end: '2100-01-01', format: 'json' },
      { key: otherAdminKey },
    );
    const body = (await response.json()) as { data: Array<{ gateway_key_id: string }> };
    expect(body.data).toHaveLength(1);
  });
});

describe('analytics, usage rows and the export agree', () => {
  test('the CSV export (byok_usage) and the JSON export (all_usage) total what analytics reports', async () => {
    const answer = await analytics(WIDE);
    const csv = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'byok_usage', start: '2000-01-01', end: '2100-01-01', format: 'csv' },
      { key: adminKey },
    );
    expect(csv.status).toBe(200);
    const table = parseCsv(await csv.text());
    const header = table[0] as string[];
    const records = table.slice(1).map((cells) => Object.fromEntries(header.map((column, index) => [column, cells[index] ?? ''])));
    const usage = records.filter((record) => record.record_type === 'usage');
    expect(usage).toHaveLength(answer.byok_requests);
    const csvCost = usage.reduce((sum, record) => sum + Number(record.cost_usd), 0);
    expect(csvCost).toBeCloseTo(answer.byok_estimated_costs as number, 8);
    const total = records.find((record) => record.record_type === 'total');
    expect(Number(total?.requests)).toBe(answer.byok_requests);

    const json = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { type: 'all_usage', start: '2000-01-01', end: '2100-01-01', format: 'json' },
      { key: adminKey },
    );
    const body = (await json.json()) as { data: Array<{ provider: string | null; cost_usd: number | null }>; totals: { requests: number; cost_usd: number } };
    expect(body.data).toHaveLength(answer.total_requests + answer.unserved_requests);
    expect(body.totals.cost_usd).toBeCloseTo(answer.estimated_costs, 8);
    expect(body.data.filter((row) => row.provider !== null)).toHaveLength(answer.total_requests);
  });
});

describe('no key in any answer', () => {
  test('analytics, cost comparison and both exports hold no provider key and no gateway key', async () => {
    const texts = [
      JSON.stringify(await analytics(`${WIDE}&group_by=provider,model,team,project,key,day,hour`)),
      await (await call(gateway, 'GET', `/v1/analytics/cost-comparison?${WIDE}`, undefined, { key: adminKey })).text(),
    ];
    for (const format of ['csv', 'json']) {
      const body = {
        type: 'all_usage',
        start: '2000-01-01',
        end: '2100-01-01',
        format,
        include: ['provider_breakdown', 'model_breakdown', 'team_breakdown', 'hourly_usage'],
      };
      texts.push(await (await call(gateway, 'POST', '/v1/billing/export', body, { key: adminKey })).text());
    }
    for (const text of texts) {
      for (const secret of [OPENAI_KEY, ANTHROPIC_KEY, OTHER_OPENAI_KEY, adminKey, memberKey, otherAdminKey, OPERATOR_KEY]) {
        expect(text.includes(secret)).toBe(false);
        expect(text.includes(secret.slice(8, 30))).toBe(false);
      }
    }
  });
});
