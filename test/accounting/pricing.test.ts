// The pricing function and the readers it depends on, part by part: rates and their fallbacks,
// long-prompt tiers, search fees per request and per search, clamping of inconsistent figures,
// Anthropic's cache-write lifetimes, and the price-file checks (the embedded table passes them).

import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { ModelCatalog, toModelInfo, type CatalogEntry } from '../../core/catalog/catalog.ts';
import { openPriceBook } from '../../core/catalog/open-prices.ts';
import type { ConfigSnapshots } from '../../core/credentials/snapshot.ts';
import { createLogger } from '../../core/logger.ts';
import { BUILTIN_CATALOG_ALIASES } from '../helpers/catalog.ts';
import { parsePriceTable, PriceFileError } from '../../core/catalog/price-file.ts';
import { costBreakdown } from '../../core/catalog/pricing.ts';
import { emptyUsage, type Usage } from '../../core/spec/vocabulary.ts';
import { mergeStreamUsage, usageFromAnthropic } from '../../providers/anthropic/usage.ts';

const info = (entry: CatalogEntry) => toModelInfo('model', entry, 'provider', []);
const usage = (fields: Partial<Usage>): Usage => ({ ...emptyUsage(), ...fields });

describe('costBreakdown', () => {
  const claude = info({
    input_cost_per_token: 3e-6,
    output_cost_per_token: 15e-6,
    cache_read_input_token_cost: 0.3e-6,
    cache_creation_input_token_cost: 3.75e-6,
    cache_creation_input_token_cost_above_1hr: 6e-6,
    input_cost_per_token_above_200k_tokens: 6e-6,
    output_cost_per_token_above_200k_tokens: 22.5e-6,
    cache_read_input_token_cost_above_200k_tokens: 0.6e-6,
    cache_creation_input_token_cost_above_200k_tokens: 7.5e-6,
  });

  test('each part at its own rate: input, cache reads, 5-minute and 1-hour writes, output', () => {
    const parts = costBreakdown(
      claude,
      usage({ inputTokens: 1000, cachedInputTokens: 300, cacheWriteInputTokens: 200, cacheWrite1hInputTokens: 50, outputTokens: 100 }),
    );
    expect(parts.input).toBeCloseTo(500 * 3e-6, 15);
    expect(parts.cacheRead).toBeCloseTo(300 * 0.3e-6, 15);
    expect(parts.cacheWrite5m).toBeCloseTo(150 * 3.75e-6, 15);
    expect(parts.cacheWrite1h).toBeCloseTo(50 * 6e-6, 15);
    expect(parts.output).toBeCloseTo(100 * 15e-6, 15);
    expect(parts.total).toBeCloseTo(500 * 3e-6 + 300 * 0.3e-6 + 150 * 3.75e-6 + 50 * 6e-6 + 100 * 15e-6, 9);
  });

  test('a prompt above 200k tokens is priced at the long-prompt rates; the 1-hour rate without a tier of its own stays', () => {
    const parts = costBreakdown(
      claude,
      usage({ inputTokens: 250_000, cachedInputTokens: 50_000, cacheWriteInputTokens: 10_000, cacheWrite1hInputTokens: 10_000, outputTokens: 10 }),
    );
    expect(parts.input).toBeCloseTo(190_000 * 6e-6, 12);
    expect(parts.cacheRead).toBeCloseTo(50_000 * 0.6e-6, 12);
    expect(parts.cacheWrite1h).toBeCloseTo(10_000 * 6e-6, 12);
    expect(parts.output).toBeCloseTo(10 * 22.5e-6, 12);
    expect(costBreakdown(claude, usage({ inputTokens: 200_000 })).input).toBeCloseTo(200_000 * 3e-6, 12);
  });

  test('missing rates fall back: cache reads and writes to the input rate, 1-hour writes to the write rate, reasoning to output', () => {
    const plain = info({ input_cost_per_token: 2e-6, output_cost_per_token: 8e-6 });
    const parts = costBreakdown(
      plain,
      usage({ inputTokens: 100, cachedInputTokens: 10, cacheWriteInputTokens: 20, cacheWrite1hInputTokens: 5, outputTokens: 50, reasoningTokens: 30 }),
    );
    expect(parts.total).toBeCloseTo(100 * 2e-6 + 50 * 8e-6, 12);
    const writes = info({ input_cost_per_token: 1e-6, output_cost_per_token: 1e-6, cache_creation_input_token_cost: 5e-6 });
    expect(costBreakdown(writes, usage({ inputTokens: 10, cacheWriteInputTokens: 10, cacheWrite1hInputTokens: 10 })).cacheWrite1h).toBeCloseTo(10 * 5e-6, 12);
  });

  test('reasoning is part of the output, priced once at its own rate', () => {
    const deep = info({ input_cost_per_token: 2e-6, output_cost_per_token: 8e-6, output_cost_per_reasoning_token: 3e-6 });
    const parts = costBreakdown(deep, usage({ outputTokens: 1000, reasoningTokens: 900 }));
    expect(parts.output).toBeCloseTo(100 * 8e-6, 12);
    expect(parts.reasoning).toBeCloseTo(900 * 3e-6, 12);
  });

  test('inconsistent figures are clamped to their whole: nothing negative, nothing twice', () => {
    const plain = info({ input_cost_per_token: 1e-6, output_cost_per_token: 2e-6, cache_read_input_token_cost: 0.5e-6 });
    const parts = costBreakdown(plain, usage({ inputTokens: 10, cachedInputTokens: 50, cacheWriteInputTokens: 7, outputTokens: 5, reasoningTokens: 9 }));
    expect(parts.input).toBe(0);
    expect(parts.cacheRead).toBeCloseTo(10 * 0.5e-6, 15);
    expect(parts.cacheWrite5m).toBe(0);
    expect(parts.output).toBe(0);
    expect(parts.reasoning).toBeCloseTo(5 * 2e-6, 15);
    expect(costBreakdown(plain, usage({ inputTokens: Number.NaN, outputTokens: -5 })).total).toBe(0);
  });

  test('a search fee that varies by context size is charged once per request, at the reported size', () => {
    const sonar = info({
      input_cost_per_token: 1e-6,
      output_cost_per_token: 1e-6,
      search_context_cost_per_query: { search_context_size_low: 0.005, search_context_size_medium: 0.008, search_context_size_high: 0.012 },
    });
    expect(costBreakdown(sonar, usage({ searchContextSize: 'high', searchQueries: 4 })).searchFee).toBe(0.012);
    expect(costBreakdown(sonar, usage({ searchContextSize: 'low' })).searchFee).toBe(0.005);
    // No size: no search ran that anyone knows of. The table lists search fees beside models that
    // search only when asked (gpt-4o-mini-2024-07-18), so nothing is charged on the table's word.
    expect(costBreakdown(sonar, usage({})).searchFee).toBe(0);
  });

  test('a search fee that is the same at every size is charged per reported search, and not at all without one', () => {
    const perSearch = info({
      input_cost_per_token: 3e-6,
      output_cost_per_token: 15e-6,
      search_context_cost_per_query: { search_context_size_low: 0.01, search_context_size_medium: 0.01, search_context_size_high: 0.01 },
    });
    expect(costBreakdown(perSearch, usage({})).searchFee).toBe(0);
    expect(costBreakdown(perSearch, usage({ searchQueries: 3 })).searchFee).toBeCloseTo(0.03, 12);
  });

  test("hosted tool calls at the provider's per-call fees; a model's own fee wins name by name; an unknown tool costs nothing", () => {
    const defaults = { web_search: 0.01, file_search: 0.0025 };
    const model = toModelInfo('model', { input_cost_per_token: 1e-6, output_cost_per_token: 2e-6 }, 'provider', [], 'shipped', defaults);
    const calls = usage({ inputTokens: 1000, outputTokens: 100, hostedToolCalls: { web_search: 3, file_search: 2, code_interpreter: 1 } });
    const parts = costBreakdown(model, calls);
    expect(parts.toolCallFees).toBeCloseTo(3 * 0.01 + 2 * 0.0025, 12);
    expect(parts.total).toBeCloseTo(1000 * 1e-6 + 100 * 2e-6 + 0.035, 12);
    const overridden = toModelInfo('model', { input_cost_per_token: 1e-6, tool_call_costs: { web_search: 0.02 } }, 'provider', [], 'override', defaults);
    expect(overridden.toolCallCosts).toEqual({ web_search: 0.02, file_search: 0.0025 });
    expect(costBreakdown(overridden, calls).toolCallFees).toBeCloseTo(3 * 0.02 + 2 * 0.0025, 12);
    expect(costBreakdown(info({ input_cost_per_token: 1e-6 }), calls).toolCallFees).toBe(0);
  });

  test('citations at the citation rate (free without one) and a flat per-request fee', () => {
    const deep = info({ input_cost_per_token: 0, output_cost_per_token: 0, citation_cost_per_token: 2e-6, input_cost_per_request: 0.005 });
    expect(costBreakdown(deep, usage({ citationTokens: 1000 })).total).toBeCloseTo(1000 * 2e-6 + 0.005, 12);
    expect(costBreakdown(info({ input_cost_per_token: 0, output_cost_per_token: 0 }), usage({ citationTokens: 1000 })).total).toBe(0);
  });
});

describe("Anthropic's usage", () => {
  test('cache writes split by lifetime; the breakdown alone gives the write count', () => {
    const both = usageFromAnthropic({
      input_tokens: 10,
      cache_read_input_tokens: 5,
      cache_creation_input_tokens: 30,
      cache_creation: { ephemeral_5m_input_tokens: 10, ephemeral_1h_input_tokens: 20 },
      output_tokens: 7,
    });
    expect(both).toMatchObject({ inputTokens: 45, cachedInputTokens: 5, cacheWriteInputTokens: 30, cacheWrite1hInputTokens: 20, outputTokens: 7 });
    const breakdownOnly = usageFromAnthropic({
      input_tokens: 1,
      cache_creation: { ephemeral_5m_input_tokens: 3, ephemeral_1h_input_tokens: 4 },
      output_tokens: 1,
    });
    expect(breakdownOnly).toMatchObject({ inputTokens: 8, cacheWriteInputTokens: 7, cacheWrite1hInputTokens: 4 });
    expect(usageFromAnthropic({ input_tokens: 1, cache_creation_input_tokens: 3, output_tokens: 1 }).cacheWrite1hInputTokens).toBeUndefined();
  });

  test('a stream keeps message_start’s breakdown when message_delta does not repeat it, and counts web searches', () => {
    const start = {
      input_tokens: 10,
      cache_creation_input_tokens: 20,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 20 },
      output_tokens: 1,
    };
    const delta = { input_tokens: 10, cache_creation_input_tokens: 20, output_tokens: 50, server_tool_use: { web_search_requests: 2 } };
    expect(usageFromAnthropic(mergeStreamUsage(start, delta))).toMatchObject({
      cacheWriteInputTokens: 20,
      cacheWrite1hInputTokens: 20,
      outputTokens: 50,
      searchQueries: 2,
    });
  });
});

describe('price files', () => {
  test('the embedded table passes the checks a KEYWAY_PRICES_FILE must pass', () => {
    const text = readFileSync(new URL('../../core/catalog/model-prices.json', import.meta.url), 'utf8');
    expect(Object.keys(parsePriceTable(text)).length).toBeGreaterThan(400);
  });

  test("LiteLLM's own layout: model entries at the top level, sample_spec skipped", () => {
    const entries = parsePriceTable(
      JSON.stringify({ sample_spec: { max_tokens: 'LEGACY' }, 'gpt-x': { litellm_provider: 'openai', input_cost_per_token: 1e-6 } }),
    );
    expect(Object.keys(entries)).toEqual(['gpt-x']);
  });

  test('a wrong tier rate or a non-object entry refuses the file', () => {
    expect(() => parsePriceTable(JSON.stringify({ m: { input_cost_per_token_above_200k_tokens: -1 } }))).toThrow(PriceFileError);
    expect(() => parsePriceTable(JSON.stringify({ models: { m: 3 } }))).toThrow("models['m'] must be an object");
    // LiteLLM's file carries metadata beside the models (`last_updated`): skipped, not refused.
    expect(Object.keys(parsePriceTable(JSON.stringify({ last_updated: '2026-07-24', m: { litellm_provider: 'openai' } })))).toEqual(['m']);
    expect(() => parsePriceTable(JSON.stringify({ m: { litellm_provider: 7 } }))).toThrow('litellm_provider');
    expect(() => parsePriceTable(JSON.stringify({ m: { tool_call_costs: { web_search: -0.01 } } }))).toThrow('tool_call_costs.web_search');
    expect(() => parsePriceTable(JSON.stringify({ m: { tool_call_costs: [0.01] } }))).toThrow('tool_call_costs must be an object');
  });
});

describe('the price book at start', () => {
  test('overrides stored in the platform settings are in the catalog before the first request, and follow every snapshot', () => {
    const listeners: Array<(snapshot: { platformSettings: Record<string, unknown> }) => void> = [];
    const snapshots = {
      current: { platformSettings: { model_prices: [{ provider: 'openai', model: 'acme-start', input_cost_per_token: 1e-6, output_cost_per_token: 2e-6 }] } },
      onChange: (listener: (typeof listeners)[number]) => void listeners.push(listener),
    };
    const catalog = new ModelCatalog();
    const logger = createLogger('silent');
    openPriceBook(BUILTIN_CATALOG_ALIASES, catalog, undefined, snapshots as unknown as ConfigSnapshots, logger);
    expect(catalog.get('openai', 'acme-start')).toMatchObject({ source: 'override', inputCostPerToken: 1e-6 });
    expect(catalog.get('openai', 'gpt-4o')?.source).toBe('shipped');
    const version = catalog.version;
    for (const listener of listeners) listener({ platformSettings: {} });
    expect(catalog.get('openai', 'acme-start')).toBeUndefined();
    expect(catalog.version).toBe(version + 1);
    // An unchanged list rebuilds nothing.
    for (const listener of listeners) listener({ platformSettings: {} });
    expect(catalog.version).toBe(version + 1);
  });
});

describe('price files and the loaded providers', () => {
  test('entries of providers no plugin serves are dropped unchecked; the served ones are checked', () => {
    const served = (provider: string) => provider === 'openai';
    const text = JSON.stringify({
      'bedrock/odd': { litellm_provider: 'bedrock', input_cost_per_token: 'n/a' },
      'gpt-x': { litellm_provider: 'openai', input_cost_per_token: 1e-6 },
    });
    expect(Object.keys(parsePriceTable(text, served))).toEqual(['gpt-x']);
    expect(() => parsePriceTable(text)).toThrow("models['bedrock/odd'].input_cost_per_token");
  });
});
