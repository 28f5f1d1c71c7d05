// Perplexity's search fee is charged whether or not Perplexity reports a cost: one gateway behind a
// Sonar simulator that reports `usage.cost` (booked as is), one behind a simulator that does not
// (list price plus the fee, computed here by hand from model-prices.json). Both book the same figure,
// streamed or not, at every search context size, and for deep research's per-query fee.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { accounted, book, price, user } from './booking.ts';

const KEY = 'pplx-PerplexityFeesKey00000000000000001';
let reporting: { simulator: SimulatorHandle; gateway: TestGateway };
let silent: { simulator: SimulatorHandle; gateway: TestGateway };

async function start(reportCost: boolean) {
  const simulator = startPerplexitySimulator({ apiKeys: [KEY], reportCost });
  const gateway = await startTestGateway({ env: { KEYWAY_PERPLEXITY_BASE_URL: simulator.url }, logLevel: 'info' });
  await addProviderKeys(gateway, [{ name: 'perplexity', api_key: KEY }]);
  return { simulator, gateway };
}

beforeAll(async () => {
  reporting = await start(true);
  silent = await start(false);
});

afterAll(async () => {
  for (const { gateway, simulator } of [reporting, silent]) {
    await gateway.stop();
    await simulator.stop();
  }
});

/** Not streamed and streamed on one gateway: equal rows. */
async function bothWays(gateway: TestGateway, body: Record<string, unknown>): Promise<UsageRecord> {
  const plain = await book(gateway, { ...body, stream: false });
  const streamed = await book(gateway, { ...body, stream: true });
  expect(accounted(streamed.row)).toEqual(accounted(plain.row));
  return plain.row;
}

const sizes = ['low', 'medium', 'high'] as const;

describe('sonar: a request fee by search context size', () => {
  for (const size of sizes) {
    test(`${size}: list price plus the ${size} fee without a reported cost, the reported cost with one, and the two agree`, async () => {
      const body = { model: 'sonar', web_search_options: { search_context_size: size }, messages: [user(`News about gateways, ${size} depth?`)] };
      const computed = await bothWays(silent.gateway, body);
      const reported = await bothWays(reporting.gateway, body);
      const rates = price('perplexity/sonar');
      const fee = (rates.search_context_cost_per_query as Record<string, number>)[`search_context_size_${size}`] as number;
      expect(computed.costUsd as number).toBeCloseTo(
        computed.inputTokens * rates.input_cost_per_token + computed.outputTokens * rates.output_cost_per_token + fee,
        12,
      );
      // Perplexity rounds its cost block to micro-dollars.
      expect(reported.costUsd as number).toBeCloseTo(computed.costUsd as number, 6);
      expect(reported.costUsd as number).toBeGreaterThanOrEqual(fee);
    });
  }

  test('without web_search_options the fee is the low one, Perplexity’s default', async () => {
    const row = await bothWays(silent.gateway, { model: 'sonar', messages: [user('Default depth?')] });
    const rates = price('perplexity/sonar');
    const low = (rates.search_context_cost_per_query as Record<string, number>).search_context_size_low as number;
    expect(row.costUsd as number).toBeCloseTo(row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token + low, 12);
  });
});

describe('sonar-deep-research: citations, reasoning and each search query at their own rates', () => {
  test('list price without a reported cost equals the reported cost', async () => {
    const body = { model: 'sonar-deep-research', messages: [user('Research the history of API gateways.')] };
    const computed = await bothWays(silent.gateway, body);
    const reported = await bothWays(reporting.gateway, body);
    const rates = price('perplexity/sonar-deep-research');
    // The simulator's deep research: 3 searches and the two sources' snippets as citation tokens.
    const searches = 3;
    const citations = Math.ceil(
      'Deterministic search snippet number 1 from the Keyway Perplexity simulator.Deterministic search snippet number 2 from the Keyway Perplexity simulator.'
        .length / 4,
    );
    expect(computed.reasoningTokens).toBeGreaterThan(0);
    const perQuery = (rates.search_context_cost_per_query as Record<string, number>).search_context_size_low as number;
    const expected =
      computed.inputTokens * rates.input_cost_per_token +
      (computed.outputTokens - computed.reasoningTokens) * rates.output_cost_per_token +
      computed.reasoningTokens * (rates.output_cost_per_reasoning_token as number) +
      citations * (rates.citation_cost_per_token as number) +
      searches * perQuery;
    expect(computed.costUsd as number).toBeCloseTo(expected, 12);
    expect(reported.costUsd as number).toBeCloseTo(expected, 6);
  });
});
