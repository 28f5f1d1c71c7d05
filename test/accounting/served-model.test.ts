// The usage row books the model the provider served (a dated name for an alias: what X-Model-Used and
// the answer's `model` say, and what the providers' reports name), priced at that model's list price,
// streamed or not, through /v1/chat/completions and /v1/messages; analytics, the export and
// /v1/usage/me show the served name. An operator's override of the alias still prices the call.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';
import { keyedGatewayPerFile, nextRequestId, price, rowOf, user } from './booking.ts';

const KEYS = {
  openai: 'sk-proj-ServedModelOpenAIKey00000000000001',
  anthropic: 'sk-ant-api03-ServedModelAnthropicKey0000001',
};

const gatewayOfFile = keyedGatewayPerFile(() => {
  // OpenAI answers an alias with the dated model it routes it to, as the real API does.
  const openai = startOpenAISimulator({
    apiKeys: [KEYS.openai],
    models: [...OPENAI_DEFAULT_MODELS, 'gpt-4o-2024-08-06'],
    // A dated name the price table does not list (yet): the routed name prices it.
    servedModels: { 'gpt-4o': 'gpt-4o-2024-08-06', 'gpt-4o-mini': 'gpt-4o-mini-2099-12-31' },
  });
  const anthropic = startAnthropicSimulator({ apiKeys: [KEYS.anthropic] });
  return {
    simulators: [openai, anthropic],
    options: { env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_ANTHROPIC_BASE_URL: anthropic.url }, probes: false },
  };
}, KEYS);
let gateway: TestGateway;
beforeAll(() => {
  gateway = gatewayOfFile();
});

interface Served {
  row: UsageRecord;
  header: string | null;
  bodyModel: string | undefined;
  costHeader: string | null;
}

/** One call, read to its end; the row it left, X-Model-Used, and the model the answer names. */
async function served(path: '/v1/chat/completions' | '/v1/messages', model: string, stream: boolean): Promise<Served> {
  const requestId = nextRequestId();
  const body = {
    model,
    max_tokens: 50,
    messages: [user(`Say hello to ${model}.`)],
    ...(stream ? { stream: true } : {}),
    ...(stream && path === '/v1/chat/completions' ? { stream_options: { include_usage: true } } : {}),
  };
  const response = await call(gateway, 'POST', path, body, { headers: { 'x-request-id': requestId } });
  const text = await response.text();
  expect(response.status).toBe(200);
  let bodyModel: string | undefined;
  if (!stream) bodyModel = (JSON.parse(text) as { model?: string }).model;
  else {
    const match = /"model"\s*:\s*"([^"]+)"/.exec(text);
    bodyModel = match?.[1];
  }
  return { row: await rowOf(gateway, requestId), header: response.headers.get('x-model-used'), bodyModel, costHeader: response.headers.get('x-keyway-cost') };
}

function listCost(key: string, row: UsageRecord): number {
  const rates = price(key);
  const cacheRead = rates.cache_read_input_token_cost ?? rates.input_cost_per_token;
  return (
    (row.inputTokens - row.cachedInputTokens) * rates.input_cost_per_token + row.cachedInputTokens * cacheRead + row.outputTokens * rates.output_cost_per_token
  );
}

const CASES = [
  { provider: 'anthropic', alias: 'claude-sonnet-4-5', dated: 'claude-sonnet-4-5-20250929' },
  { provider: 'openai', alias: 'gpt-4o', dated: 'gpt-4o-2024-08-06' },
] as const;

describe('the usage row books the served model', () => {
  for (const { provider, alias, dated } of CASES) {
    for (const path of ['/v1/chat/completions', '/v1/messages'] as const) {
      test(`${provider}: ${alias} through ${path}, streamed and not: the row says ${dated}, as X-Model-Used does, at its list price`, async () => {
        const rows: UsageRecord[] = [];
        for (const stream of [false, true]) {
          const answer = await served(path, alias, stream);
          expect(answer.header).toBe(dated);
          expect(answer.bodyModel).toBe(dated);
          expect(answer.row.provider).toBe(provider);
          expect(answer.row.model).toBe(dated);
          expect(answer.row.requestedModel).toBe(alias);
          expect(answer.row.inputTokens).toBeGreaterThan(0);
          expect(answer.row.costUsd as number).toBeCloseTo(listCost(dated, answer.row), 12);
          if (!stream) expect(Number(answer.costHeader)).toBeCloseTo(answer.row.costUsd as number, 9);
          rows.push(answer.row);
        }
        const [plain, streamed] = rows as [UsageRecord, UsageRecord];
        expect({ model: streamed.model, inputTokens: streamed.inputTokens, outputTokens: streamed.outputTokens, costUsd: streamed.costUsd }).toEqual({
          model: plain.model,
          inputTokens: plain.inputTokens,
          outputTokens: plain.outputTokens,
          costUsd: plain.costUsd,
        });
      });
    }
  }

  test('analytics by model, models_used, the export and /v1/usage/me name the served model, never the alias', async () => {
    await served('/v1/chat/completions', 'claude-sonnet-4-5', false);
    await served('/v1/chat/completions', 'gpt-4o', false);
    await flushUsage(gateway);
    const analytics = (await (await call(gateway, 'GET', '/v1/analytics/byok?period=today&group_by=provider,model')).json()) as {
      by_provider: Array<{ name: string; models_used: string[] }>;
      by_model: Array<{ name: string; provider: string }>;
    };
    const modelsUsed = analytics.by_provider.flatMap((entry) => entry.models_used);
    expect(modelsUsed).toContain('claude-sonnet-4-5-20250929');
    expect(modelsUsed).toContain('gpt-4o-2024-08-06');
    expect(modelsUsed).not.toContain('claude-sonnet-4-5');
    expect(modelsUsed).not.toContain('gpt-4o');
    expect(analytics.by_model.map((entry) => entry.name)).not.toContain('claude-sonnet-4-5');

    const exported = (await (await call(gateway, 'POST', '/v1/billing/export', { type: 'all_usage', period: 'today', format: 'json' })).json()) as {
      data: Array<{ model: string | null; requested_model: string }>;
    };
    const aliasRows = exported.data.filter((row) => row.requested_model === 'claude-sonnet-4-5');
    expect(aliasRows.length).toBeGreaterThan(0);
    for (const row of aliasRows) expect(row.model).toBe('claude-sonnet-4-5-20250929');

    const mine = (await (await call(gateway, 'GET', '/v1/usage/me?period=today', undefined, { key: OPERATOR_KEY })).json()) as {
      by_model: Array<{ model?: string; name?: string }>;
    };
    const names = mine.by_model.map((entry) => entry.model ?? entry.name);
    expect(names).toContain('claude-sonnet-4-5-20250929');
    expect(names).not.toContain('claude-sonnet-4-5');
  });

  test('an operator override of the alias prices the answers the provider names by date', async () => {
    const input = 0.00001;
    const output = 0.00004;
    const put = await call(gateway, 'PUT', '/v1/platform/prices', {
      prices: [{ provider: 'anthropic', model: 'claude-sonnet-4-5', input_cost_per_token: input, output_cost_per_token: output }],
    });
    expect(put.status).toBe(200);
    try {
      const answer = await served('/v1/messages', 'claude-sonnet-4-5', false);
      expect(answer.row.model).toBe('claude-sonnet-4-5-20250929');
      expect(answer.row.costUsd as number).toBeCloseTo(answer.row.inputTokens * input + answer.row.outputTokens * output, 12);
    } finally {
      await call(gateway, 'DELETE', '/v1/platform/prices/anthropic/claude-sonnet-4-5');
    }
  });

  test('a served name the table does not price is priced by the routed name, streamed or not', async () => {
    for (const stream of [false, true]) {
      const answer = await served('/v1/chat/completions', 'gpt-4o-mini', stream);
      expect(answer.header).toBe('gpt-4o-mini-2099-12-31');
      expect(answer.row.model).toBe('gpt-4o-mini-2099-12-31');
      expect(answer.row.costUsd).not.toBeNull();
      expect(answer.row.costUsd as number).toBeCloseTo(listCost('gpt-4o-mini', answer.row), 12);
    }
  });
});
