// What a call cost at list price. The rules, token type by token type and provider by provider, are
// in docs/costs.md; in short: Keyway's Usage counts the whole prompt in `inputTokens` (cache reads and
// writes are parts of it) and reasoning inside `outputTokens` (each provider's usage reader makes it
// so), and every part is priced once, at its own rate.

import type { Usage } from '../spec/vocabulary.ts';
import { isPriced, type ModelCatalog, type ModelInfo, type PriceSource, type PriceTier } from './catalog.ts';

/** The search depth of a request that asks for web search without naming one (OpenAI's documented default). */
export const DEFAULT_SEARCH_CONTEXT_SIZE = 'medium';

/** A count as pricing reads it: only finite, non-negative numbers count; the rest is 0. */
function count(value: number | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

/** The part of a call's cost each token type and fee contributes, in USD. */
export interface CostBreakdown {
  input: number;
  cacheRead: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  output: number;
  reasoning: number;
  citations: number;
  requestFee: number;
  searchFee: number;
  /** Hosted tools billed per call (OpenAI's web search and file search calls). */
  toolCallFees: number;
  total: number;
}

/** How much a price's source says about the operator's intent: an override over the price file over the shipped table. */
const SOURCE_RANK: Readonly<Record<PriceSource, number>> = { shipped: 0, file: 1, override: 2 };

/**
 * The price of the first of `models` the catalog prices (the name the provider reported serving, then
 * the routed one, then the requested one), except that a price the operator set (an override, else the
 * price file) for any of them wins over the shipped price of an earlier one: an override of the alias a
 * team calls (`claude-sonnet-4-5`) still prices the answers the provider names by date.
 */
export function priceOf(catalog: ModelCatalog, provider: string, models: readonly string[]): ModelInfo | undefined {
  let chosen: ModelInfo | undefined;
  for (const model of models) {
    const info = catalog.get(provider, model);
    if (info === undefined || !isPriced(info)) continue;
    if (chosen === undefined || SOURCE_RANK[info.source] > SOURCE_RANK[chosen.source]) chosen = info;
  }
  return chosen;
}

/** The long-prompt tier a prompt of this size falls in (the highest threshold it exceeds), if any. */
function tierFor(info: ModelInfo, promptTokens: number): PriceTier | undefined {
  if (info.tiers.length === 0) return undefined;
  let chosen: PriceTier | undefined;
  for (const tier of info.tiers) if (promptTokens > tier.aboveInputTokens) chosen = tier;
  return chosen;
}

/**
 * The search fee (LiteLLM's `search_context_cost_per_query`), charged only for searches that ran.
 * A fee that varies with the search context size is a per-request fee (Perplexity Sonar, OpenAI's
 * web search): charged once when the usage names the size searched at (Perplexity's reader always
 * does; the account stage adds the size a request's `web_search_options` asked for). A fee that is
 * the same at every size is a per-search fee (Perplexity deep research's queries, Anthropic's web
 * search tool): charged once per search the provider reports. The table lists search fees beside
 * models that only search when asked (gpt-4o-mini-2024-07-18), so nothing is charged on a hint.
 */
function searchFee(fees: Readonly<Record<string, number>>, usage: Usage): number {
  const values = Object.values(fees);
  if (values.length === 0) return 0;
  const first = values[0] as number;
  if (values.every((value) => value === first)) return first * count(usage.searchQueries);
  if (typeof usage.searchContextSize !== 'string') return 0;
  return fees[usage.searchContextSize.toLowerCase()] ?? fees[DEFAULT_SEARCH_CONTEXT_SIZE] ?? Math.max(...values);
}

/** Each hosted tool call at its fee; a call of a tool the table names no fee for costs nothing (docs/costs.md). */
function toolCallFees(costs: Readonly<Record<string, number>> | undefined, calls: Usage['hostedToolCalls']): number {
  if (costs === undefined || calls === undefined) return 0;
  let total = 0;
  for (const [name, callCount] of Object.entries(calls)) total += count(callCount) * (costs[name] ?? 0);
  return total;
}

export function costBreakdown(info: ModelInfo, usage: Usage): CostBreakdown {
  const inputTokens = count(usage.inputTokens);
  const tier = tierFor(info, inputTokens);
  // The processing tier the provider says it served at (OpenAI's priority or flex) bills at its own rates.
  const served = usage.serviceTier === undefined ? undefined : info.serviceTiers?.[usage.serviceTier];
  const inputRate = tier?.inputCostPerToken ?? served?.inputCostPerToken ?? info.inputCostPerToken;
  const outputRate = tier?.outputCostPerToken ?? served?.outputCostPerToken ?? info.outputCostPerToken;
  const cacheReadRate = tier?.cacheReadCostPerToken ?? served?.cacheReadCostPerToken ?? info.cacheReadCostPerToken ?? inputRate;
  const cacheWriteRate = tier?.cacheWriteCostPerToken ?? served?.cacheWriteCostPerToken ?? info.cacheWriteCostPerToken ?? inputRate;
  const cacheWrite1hRate = tier?.cacheWrite1hCostPerToken ?? info.cacheWrite1hCostPerToken ?? cacheWriteRate;
  // Subsets are clamped to their whole, so a provider's inconsistent figures never price a token twice.
  const cacheRead = Math.min(count(usage.cachedInputTokens), inputTokens);
  const cacheWrite = Math.min(count(usage.cacheWriteInputTokens), inputTokens - cacheRead);
  const cacheWrite1h = Math.min(count(usage.cacheWrite1hInputTokens), cacheWrite);
  const outputTokens = count(usage.outputTokens);
  const reasoning = Math.min(count(usage.reasoningTokens), outputTokens);
  const parts: CostBreakdown = {
    input: (inputTokens - cacheRead - cacheWrite) * inputRate,
    cacheRead: cacheRead * cacheReadRate,
    cacheWrite5m: (cacheWrite - cacheWrite1h) * cacheWriteRate,
    cacheWrite1h: cacheWrite1h * cacheWrite1hRate,
    output: (outputTokens - reasoning) * outputRate,
    reasoning: reasoning * (info.reasoningCostPerToken ?? outputRate),
    citations: usage.citationTokens === undefined ? 0 : count(usage.citationTokens) * (info.citationCostPerToken ?? 0),
    requestFee: info.requestCostUsd ?? 0,
    searchFee: info.searchCostPerQuery === undefined ? 0 : searchFee(info.searchCostPerQuery, usage),
    toolCallFees: toolCallFees(info.toolCallCosts, usage.hostedToolCalls),
    total: 0,
  };
  parts.total = roundUsd(
    parts.input +
      parts.cacheRead +
      parts.cacheWrite5m +
      parts.cacheWrite1h +
      parts.output +
      parts.reasoning +
      parts.citations +
      parts.requestFee +
      parts.searchFee +
      parts.toolCallFees,
  );
  return parts;
}

/** Nano-dollar precision: enough for one token of the cheapest model, free of float noise. */
export function roundUsd(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

/**
 * List price of a call in USD: every token type at its own rate plus the per-request fees (see
 * costBreakdown). The first of `models` the catalog prices is used (the served name, then the
 * requested one); undefined when none is priced.
 */
export function costOf(catalog: ModelCatalog, provider: string, models: readonly string[], usage: Usage): number | undefined {
  const info = priceOf(catalog, provider, models);
  return info === undefined ? undefined : costBreakdown(info, usage).total;
}
