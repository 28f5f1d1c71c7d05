// Price overrides of the fees that sit in nested tables (QA20 qa-cost): a search fee set for one
// context size is merged over the table's other sizes, as every other field of an override is, and a
// hosted-tool fee name the provider never bills is refused rather than stored as an effective fee that
// no call is ever charged.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator, type OpenAISimulatorHandle } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { book, price, user } from './booking.ts';

const PERPLEXITY_KEY = 'pplx-PriceOverrideFeesKey000000000000001';
const OPENAI_KEY = 'sk-proj-PriceOverrideFeesKey0000000000001';

const folder = mkdtempSync(join(tmpdir(), 'keyway-fee-tables-'));
const pricesFile = join(folder, 'model_prices_and_context_window.json');

let perplexity: SimulatorHandle;
let openai: OpenAISimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  // A price file that changes one search size of sonar-pro, as an operator's own short file would.
  writeFileSync(
    pricesFile,
    JSON.stringify({
      'perplexity/sonar-pro': { litellm_provider: 'perplexity', mode: 'chat', search_context_cost_per_query: { search_context_size_high: 0.03 } },
    }),
  );
  // Without Perplexity's own reported cost, the list price (and so the override) is what is booked.
  perplexity = startPerplexitySimulator({ apiKeys: [PERPLEXITY_KEY], reportCost: false });
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  gateway = await startTestGateway({
    env: { KEYWAY_PERPLEXITY_BASE_URL: perplexity.url, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_PRICES_FILE: pricesFile },
    probes: false,
    logLevel: 'info',
  });
  await addProviderKeys(gateway, [
    { name: 'perplexity', api_key: PERPLEXITY_KEY },
    { name: 'openai', api_key: OPENAI_KEY },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await perplexity.stop();
  await openai.stop();
  rmSync(folder, { recursive: true, force: true });
});

async function priceRow(provider: string, model: string): Promise<Record<string, unknown> | undefined> {
  const response = await call(gateway, 'GET', `/v1/platform/prices?provider=${provider}&model=${encodeURIComponent(model)}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: Array<Record<string, unknown>> }).data[0];
}

describe('a search fee override', () => {
  test('one context size is merged over the table: the other sizes keep their fees and Sonar is still charged per request', async () => {
    const listed = price('perplexity/sonar');
    const table = listed.search_context_cost_per_query as Record<string, number>;
    const put = await call(gateway, 'PUT', '/v1/platform/prices', {
      provider: 'perplexity',
      model: 'sonar',
      search_context_cost_per_query: { search_context_size_high: 0.02 },
    });
    expect(put.status).toBe(200);
    expect((await priceRow('perplexity', 'sonar'))?.search_context_cost_per_query).toEqual({
      search_context_size_low: table.search_context_size_low,
      search_context_size_medium: table.search_context_size_medium,
      search_context_size_high: 0.02,
    });
    for (const [size, fee] of [
      ['low', table.search_context_size_low],
      ['high', 0.02],
    ] as const) {
      const booked = await book(gateway, { model: 'sonar', web_search_options: { search_context_size: size }, messages: [user(`search ${size}`)] });
      const tokens = booked.row.inputTokens * listed.input_cost_per_token + booked.row.outputTokens * listed.output_cost_per_token;
      expect(booked.row.costUsd as number).toBeCloseTo(tokens + (fee as number), 9);
    }
    expect((await call(gateway, 'DELETE', '/v1/platform/prices/perplexity/sonar')).status).toBe(200);
  });
});

describe('a search fee in KEYWAY_PRICES_FILE', () => {
  test("is merged over the embedded table's sizes as an override is", async () => {
    const listed = price('perplexity/sonar-pro');
    const table = listed.search_context_cost_per_query as Record<string, number>;
    expect((await priceRow('perplexity', 'sonar-pro'))?.search_context_cost_per_query).toEqual({ ...table, search_context_size_high: 0.03 });
    const booked = await book(gateway, { model: 'sonar-pro', web_search_options: { search_context_size: 'low' }, messages: [user('search low')] });
    const tokens = booked.row.inputTokens * listed.input_cost_per_token + booked.row.outputTokens * listed.output_cost_per_token;
    expect(booked.row.costUsd as number).toBeCloseTo(tokens + (table.search_context_size_low as number), 9);
  });
});

describe('a hosted-tool fee override', () => {
  test("a fee name the provider bills replaces that fee; the provider's other fees stay", async () => {
    const put = await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: 'gpt-4o-mini', tool_call_costs: { web_search: 0.03 } });
    expect(put.status).toBe(200);
    expect((await priceRow('openai', 'gpt-4o-mini'))?.tool_call_costs).toMatchObject({ web_search: 0.03, file_search: 0.0025 });
    expect((await call(gateway, 'DELETE', '/v1/platform/prices/openai/gpt-4o-mini')).status).toBe(200);
  });

  test('a name the provider never bills is a 400 naming it and the names it bills, and nothing is stored', async () => {
    const typo = await expectSpecError(
      await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: 'gpt-4o-mini', tool_call_costs: { web_search: 0.03, websearch: 0.03 } }),
      400,
      'invalid_field',
    );
    expect(typo.error.param).toBe('prices[0].tool_call_costs.websearch');
    expect(typo.error.message).toContain('web_search, web_search_preview, web_search_preview_non_reasoning, file_search');
    // A provider that bills no hosted tool per call: its searches are priced by search_context_cost_per_query.
    const none = await expectSpecError(
      await call(gateway, 'PUT', '/v1/platform/prices', { prices: [{ provider: 'perplexity', model: 'sonar', tool_call_costs: { web_search: 0.05 } }] }),
      400,
      'invalid_field',
    );
    expect(none.error.param).toBe('prices[0].tool_call_costs.web_search');
    expect(none.error.message).toContain('search_context_cost_per_query');
    expect((await priceRow('openai', 'gpt-4o-mini'))?.source).toBe('shipped');
    expect((await priceRow('perplexity', 'sonar'))?.source).toBe('shipped');
  });
});
