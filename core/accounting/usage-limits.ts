// Upstream usage is data from outside: a provider (or a proxy posing as one) that reports 1e15
// tokens, a negative count or NaN must not book a $12.5 billion request. The account stage passes
// every reported usage through `capUsage`: counts are clamped to [0, MAX_USAGE_TOKENS], a reported
// cost to [0, MAX_PROVIDER_COST_USD], and the row is flagged `usageEstimated` (its counts are no
// longer the provider's own) with a warning in the log naming the request and the provider.
//
// MAX_USAGE_TOKENS is 10 million per request: the largest context windows are about 2 million tokens
// and outputs far fewer, so no real request comes near it. MAX_PROVIDER_COST_USD is $10,000: 10
// million tokens at the dearest list price in the catalog stays under it.

import type { Usage } from '../spec/vocabulary.ts';

export const MAX_USAGE_TOKENS = 10_000_000;
export const MAX_PROVIDER_COST_USD = 10_000;

const TOKEN_FIELDS = ['inputTokens', 'outputTokens', 'totalTokens', 'cachedInputTokens', 'cacheWriteInputTokens', 'reasoningTokens'] as const;
/** Counts a provider reports only sometimes: checked when present. */
const OPTIONAL_COUNT_FIELDS = ['cacheWrite1hInputTokens', 'citationTokens', 'searchQueries'] as const;

export interface CappedUsage {
  usage: Usage;
  /** The fields that were out of range, with what the provider sent (as text: NaN and Infinity survive). */
  capped: Record<string, string> | undefined;
}

function saneCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_USAGE_TOKENS;
}

function clampCount(value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) return 0;
  return Math.min(Math.round(value), MAX_USAGE_TOKENS);
}

/** Calls of one hosted tool in one answer: far above any real tool loop, and a fee table's worth of cost at most. */
export const MAX_HOSTED_TOOL_CALLS = 10_000;

function saneToolCalls(calls: Usage['hostedToolCalls']): boolean {
  if (calls === undefined) return true;
  for (const value of Object.values(calls))
    if (!(typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_HOSTED_TOOL_CALLS)) return false;
  return true;
}

function clampToolCalls(calls: Readonly<Record<string, number>>, capped: Record<string, string>): Record<string, number> {
  const fixed: Record<string, number> = {};
  for (const [name, value] of Object.entries(calls)) {
    const sane = typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_HOSTED_TOOL_CALLS;
    if (!sane) capped[`hostedToolCalls.${name}`] = String(value);
    fixed[name] = sane ? value : typeof value !== 'number' || Number.isNaN(value) || value <= 0 ? 0 : Math.min(Math.round(value), MAX_HOSTED_TOOL_CALLS);
  }
  return fixed;
}

/** Unchanged (the same object, nothing allocated) when every figure is sane: the usual case. */
export function capUsage(usage: Usage): CappedUsage {
  const cost = usage.providerCostUsd;
  if (
    saneCount(usage.inputTokens) &&
    saneCount(usage.outputTokens) &&
    saneCount(usage.totalTokens) &&
    saneCount(usage.cachedInputTokens) &&
    saneCount(usage.cacheWriteInputTokens) &&
    saneCount(usage.reasoningTokens) &&
    OPTIONAL_COUNT_FIELDS.every((field) => usage[field] === undefined || saneCount(usage[field])) &&
    saneToolCalls(usage.hostedToolCalls) &&
    (cost === undefined || (typeof cost === 'number' && Number.isFinite(cost) && cost >= 0 && cost <= MAX_PROVIDER_COST_USD))
  ) {
    return { usage, capped: undefined };
  }
  const fixed: Usage = { ...usage };
  const capped: Record<string, string> = {};
  for (const field of [...TOKEN_FIELDS, ...OPTIONAL_COUNT_FIELDS]) {
    const value = usage[field];
    if (value === undefined) continue;
    if (saneCount(value)) continue;
    const clamped = clampCount(value);
    // A fractional count is rounded, not flagged: it is a provider's rounding, not an absurdity.
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_USAGE_TOKENS) {
      fixed[field] = clamped;
      continue;
    }
    capped[field] = String(value);
    fixed[field] = clamped;
  }
  if (usage.hostedToolCalls !== undefined && !saneToolCalls(usage.hostedToolCalls)) fixed.hostedToolCalls = clampToolCalls(usage.hostedToolCalls, capped);
  if (cost !== undefined && !(typeof cost === 'number' && Number.isFinite(cost) && cost >= 0 && cost <= MAX_PROVIDER_COST_USD)) {
    capped.providerCostUsd = String(cost);
    // A cost that is no number is dropped (the list price applies); a huge one is capped.
    if (typeof cost === 'number' && Number.isFinite(cost) && cost > MAX_PROVIDER_COST_USD) fixed.providerCostUsd = MAX_PROVIDER_COST_USD;
    else delete fixed.providerCostUsd;
  }
  return { usage: fixed, capped: Object.keys(capped).length > 0 ? capped : undefined };
}
