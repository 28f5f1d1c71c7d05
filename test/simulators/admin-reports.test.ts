// The simulators' organisation report endpoints on their own: admin-key auth as strict as the real
// APIs, the documented shapes, grouping, paging, and the ledger behind them.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ANTHROPIC_SIM_ADMIN_KEY, startAnthropicSimulator, type AnthropicSimulatorHandle } from './anthropic.ts';
import { OPENAI_SIM_ADMIN_KEY, startOpenAISimulator, type OpenAISimulatorHandle } from './openai.ts';
import { listPrices } from './usage-ledger.ts';

const OPENAI_KEY = 'sk-proj-AdminReportsTestKey00000000000001';
const ANTHROPIC_KEY = 'sk-ant-api03-AdminReportsTestKey000000000001';
const DAY = 86_400_000;

let openai: OpenAISimulatorHandle;
let anthropic: AnthropicSimulatorHandle;
const todayStart = Math.floor(Date.now() / DAY) * DAY;

async function openaiGet(path: string, key: string | null = OPENAI_SIM_ADMIN_KEY): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${openai.url}${path}`, { headers: key === null ? {} : { authorization: `Bearer ${key}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function anthropicGet(path: string, key: string | null = ANTHROPIC_SIM_ADMIN_KEY, version: string | null = '2023-06-01') {
  const headers: Record<string, string> = {};
  if (key !== null) headers['x-api-key'] = key;
  if (version !== null) headers['anthropic-version'] = version;
  const response = await fetch(`${anthropic.url}${path}`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  const chat = await fetch(`${openai.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPENAI_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Count me.' }] }),
  });
  expect(chat.status).toBe(200);
  const message = await fetch(`${anthropic.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': ANTHROPIC_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-20250514', max_tokens: 50, messages: [{ role: 'user', content: 'Count me too.' }] }),
  });
  expect(message.status).toBe(200);
});

afterAll(async () => {
  await openai.stop();
  await anthropic.stop();
});

describe('OpenAI organisation endpoints', () => {
  test('only an admin key is accepted', async () => {
    expect((await openaiGet('/v1/organization/costs?start_time=0', null)).status).toBe(401);
    const wrong = await openaiGet('/v1/organization/costs?start_time=0', 'sk-admin-NotTheRightOne0000000000');
    expect(wrong.status).toBe(401);
    expect((wrong.body.error as { code: string }).code).toBe('invalid_api_key');
    const project = await openaiGet('/v1/organization/costs?start_time=0', OPENAI_KEY);
    expect(project.status).toBe(403);
    // And the admin key cannot call models.
    const chat = await fetch(`${openai.url}/v1/models`, { headers: { authorization: `Bearer ${OPENAI_SIM_ADMIN_KEY}` } });
    expect(chat.status).toBe(401);
  });

  test('costs: day buckets with line items priced at list price', async () => {
    const start = todayStart / 1000;
    const { status, body } = await openaiGet(`/v1/organization/costs?start_time=${start}&end_time=${start + 86_400}&group_by=line_item`);
    expect(status).toBe(200);
    expect(body.object).toBe('page');
    const bucket = (body.data as Array<{ object: string; start_time: number; end_time: number; results: Array<Record<string, unknown>> }>)[0];
    expect(bucket).toMatchObject({ object: 'bucket', start_time: start, end_time: start + 86_400 });
    const served = openai.ledger.served[0];
    const price = listPrices('openai', 'gpt-4o');
    const input = bucket?.results.find((result) => result.line_item === 'gpt-4o, input');
    const output = bucket?.results.find((result) => result.line_item === 'gpt-4o, output');
    expect(input?.object).toBe('organization.costs.result');
    expect((input?.amount as { value: number; currency: string }).currency).toBe('usd');
    expect((input?.amount as { value: number }).value).toBeCloseTo((served?.uncachedInputTokens ?? 0) * (price?.input_cost_per_token ?? 0), 12);
    expect((output?.amount as { value: number }).value).toBeCloseTo((served?.outputTokens ?? 0) * (price?.output_cost_per_token ?? 0), 12);
    expect(input?.project_id).toBeNull();
  });

  test('usage/completions: grouped by model and key; paged with has_more and next_page', async () => {
    const start = todayStart / 1000 - 9 * 86_400;
    const first = await openaiGet(
      `/v1/organization/usage/completions?start_time=${start}&end_time=${start + 10 * 86_400}&group_by=model&group_by=api_key_id&limit=7`,
    );
    expect(first.status).toBe(200);
    expect(first.body.has_more).toBe(true);
    expect((first.body.data as unknown[]).length).toBe(7);
    const second = await openaiGet(
      `/v1/organization/usage/completions?start_time=${start}&end_time=${start + 10 * 86_400}&group_by=model&group_by=api_key_id&limit=7&page=${encodeURIComponent(String(first.body.next_page))}`,
    );
    expect(second.body.has_more).toBe(false);
    expect(second.body.next_page).toBeNull();
    const last = (second.body.data as Array<{ results: Array<Record<string, unknown>> }>).at(-1);
    expect(last?.results[0]).toMatchObject({
      object: 'organization.usage.completions.result',
      model: 'gpt-4o',
      api_key_id: openai.ledger.keyId(OPENAI_KEY),
      num_model_requests: 1,
      input_cached_tokens: 0,
    });
  });

  test('bad parameters are 400s', async () => {
    expect((await openaiGet('/v1/organization/costs')).status).toBe(400);
    expect((await openaiGet('/v1/organization/costs?start_time=0&group_by=model')).status).toBe(400);
    expect((await openaiGet('/v1/organization/usage/completions?start_time=0&limit=99')).status).toBe(400);
  });

  test('project API keys carry a redacted value and the id the usage report groups by', async () => {
    const projects = await openaiGet('/v1/organization/projects');
    const project = (projects.body.data as Array<{ id: string }>)[0];
    const keys = await openaiGet(`/v1/organization/projects/${project?.id}/api_keys`);
    const key = (keys.body.data as Array<Record<string, unknown>>)[0];
    expect(key).toMatchObject({ object: 'organization.project.api_key', id: openai.ledger.keyId(OPENAI_KEY), redacted_value: 'sk-pro...001' });
  });

  test('an added charge shows in the costs report', async () => {
    openai.ledger.addCharge({ model: 'gpt-4o', usd: 1.5 });
    const start = todayStart / 1000;
    const { body } = await openaiGet(`/v1/organization/costs?start_time=${start}&end_time=${start + 86_400}`);
    const total = ((body.data as Array<{ results: Array<{ amount: { value: number } }> }>)[0]?.results[0]?.amount.value ?? 0) as number;
    expect(total).toBeGreaterThan(1.5);
    openai.ledger.charges.length = 0;
  });
});

describe('Anthropic Admin API', () => {
  test('only an admin key with a version header is accepted', async () => {
    expect((await anthropicGet('/v1/organizations/api_keys', null)).status).toBe(401);
    expect((await anthropicGet('/v1/organizations/api_keys', 'sk-ant-admin01-Wrong000000000000')).status).toBe(401);
    const normal = await anthropicGet('/v1/organizations/api_keys', ANTHROPIC_KEY);
    expect(normal.status).toBe(403);
    expect(normal.body.type).toBe('error');
    expect((await anthropicGet('/v1/organizations/api_keys', ANTHROPIC_SIM_ADMIN_KEY, null)).status).toBe(400);
  });

  test('usage_report/messages: uncached, cache reads, cache_creation by TTL, output; grouped by model and key', async () => {
    const from = new Date(todayStart).toISOString();
    const { status, body } = await anthropicGet(
      `/v1/organizations/usage_report/messages?starting_at=${from}&bucket_width=1d&group_by[]=model&group_by[]=api_key_id`,
    );
    expect(status).toBe(200);
    const bucket = (body.data as Array<{ starting_at: string; ending_at: string; results: Array<Record<string, unknown>> }>)[0];
    expect(bucket?.starting_at).toBe(from.replace('.000Z', 'Z'));
    const served = anthropic.ledger.served[0];
    expect(bucket?.results[0]).toMatchObject({
      uncached_input_tokens: served?.uncachedInputTokens,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      output_tokens: served?.outputTokens,
      model: 'claude-sonnet-4-20250514',
      api_key_id: anthropic.ledger.keyId(ANTHROPIC_KEY),
    });
    expect(body.has_more).toBe(false);
  });

  test('cost_report: amounts in cents as decimal strings, by description with model and token type', async () => {
    const from = new Date(todayStart).toISOString();
    const { body } = await anthropicGet(`/v1/organizations/cost_report?starting_at=${from}&group_by[]=description`);
    const results = (body.data as Array<{ results: Array<Record<string, unknown>> }>)[0]?.results ?? [];
    const output = results.find((result) => result.token_type === 'output_tokens');
    const served = anthropic.ledger.served[0];
    const price = listPrices('anthropic', 'claude-sonnet-4-20250514');
    expect(output).toMatchObject({ currency: 'USD', model: 'claude-sonnet-4-20250514', cost_type: 'tokens' });
    expect(typeof output?.amount).toBe('string');
    expect(Number(output?.amount)).toBeCloseTo((served?.outputTokens ?? 0) * (price?.output_cost_per_token ?? 0) * 100, 6);
    const ungrouped = await anthropicGet(`/v1/organizations/cost_report?starting_at=${from}`);
    expect((ungrouped.body.data as Array<{ results: Array<Record<string, unknown>> }>)[0]?.results[0]?.model).toBeNull();
  });

  test('api_keys list the partial key hint', async () => {
    const { body } = await anthropicGet('/v1/organizations/api_keys?limit=20');
    expect((body.data as unknown[])[0]).toMatchObject({
      type: 'api_key',
      id: anthropic.ledger.keyId(ANTHROPIC_KEY),
      partial_key_hint: 'sk-ant-api03-Adm...0001',
    });
  });
});
