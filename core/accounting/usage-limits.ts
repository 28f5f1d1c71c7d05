// Upstream usage is data from outside: a provider (or a proxy posing as one, such as a custom
// `base_url`) that reports 1e15 tokens, a negative count, text or nothing at all must neither book a
// $12.5 billion request nor a free one. The account stage passes every reported usage through
// `capUsage`, with the request's output bound and, where a count is missing, Keyway's estimate of it:
//
// - an input or output count the provider did not report usably (absent, not a number, not finite,
//   negative; or 0 where a served answer cannot have 0, which account.ts marks) is booked at Keyway's estimate: the prompt counted by the provider's tokenizer or
//   token-estimate.ts, the output estimated from the answer's text. A served answer was read and
//   generated, so it is never booked as free (QA14: 80 answers without usage passed a budget that
//   stopped normal traffic after 12);
// - output above what the request allowed (its `max_tokens` or `max_completion_tokens` per choice,
//   else the model's output limit, times `n`; reasoning reported beside it on top) is capped there: a
//   `max_tokens: 50` request was booked $125 when 10 million was the only cap (QA14);
// - any other count is clamped to [0, MAX_USAGE_TOKENS], a reported cost to [0, MAX_PROVIDER_COST_USD]
//   (a reported cost of 0 for an answer that used tokens is dropped: the list price applies);
// - a part reported above its whole (cache reads or writes above the input, 1-hour writes above the
//   writes, reasoning above the output) is clamped to it, as pricing clamps it, so the row, the export and
//   analytics read the counts the cost was computed from (QA19: the row kept the parts as sent);
// - a fractional count is rounded up, without a flag: a provider's rounding, and never under-counted.
//
// Such a row is flagged `usageEstimated` (its counts are not all the provider's own), and the account
// stage logs a warning naming the request, the provider and what was sent (never text of the answer).
//
// MAX_USAGE_TOKENS is 10 million per request: the largest context windows are about 2 million tokens
// and outputs far fewer, so no real request comes near it. It stays the only cap on input: what a
// provider reads is more than the request shows (stored conversations, caches, files, server tools'
// results, chat templates), so no bound from the request is safe for it (docs/costs.md).
// MAX_PROVIDER_COST_USD is $10,000: 10 million tokens at the dearest list price stays under it.

import type { ChatRequest, Usage } from '../spec/vocabulary.ts';
import { outputAllowance, requestedOutputTokens } from '../wire/output-allowance.ts';

export const MAX_USAGE_TOKENS = 10_000_000;
export const MAX_PROVIDER_COST_USD = 10_000;
/** Calls of one hosted tool in one answer: far above any real tool loop, and a fee table's worth of cost at most. */
export const MAX_HOSTED_TOOL_CALLS = 10_000;

/** Counts other than input and output: clamped, never estimated. */
const OTHER_TOKEN_FIELDS = ['totalTokens', 'cachedInputTokens', 'cacheWriteInputTokens', 'reasoningTokens'] as const;
/** Counts a provider reports only sometimes: checked when present. */
const OPTIONAL_COUNT_FIELDS = ['cacheWrite1hInputTokens', 'citationTokens', 'searchQueries'] as const;

/** A count that can be booked as sent: a whole number in range. */
function saneCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_USAGE_TOKENS;
}

/** A count at all: a finite number, not negative. Anything else says nothing of what was used. */
function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** A count clamped to [0, ceiling], fractions rounded up (Infinity to the ceiling); 0 for what is not a number. */
function clampCount(value: unknown, ceiling: number): number {
  return typeof value === 'number' && value > 0 ? Math.min(Math.ceil(value), ceiling) : 0;
}

/** The provider reported no usable prompt count (or no usage at all): the prompt is estimated. Allocation-free. */
export function lacksInputCount(usage: Usage | undefined): boolean {
  return usage === undefined || usage.unreported?.inputTokens !== undefined || !isCount(usage.inputTokens);
}

/** The provider reported no usable output count (or no usage at all): the output is estimated. Allocation-free. */
export function lacksOutputCount(usage: Usage | undefined): boolean {
  return usage === undefined || usage.unreported?.outputTokens !== undefined || !isCount(usage.outputTokens);
}

function saneToolCalls(calls: Usage['hostedToolCalls']): boolean {
  if (calls === undefined) return true;
  for (const value of Object.values(calls))
    if (!(typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_HOSTED_TOOL_CALLS)) return false;
  return true;
}

function saneCost(cost: unknown): boolean {
  return typeof cost === 'number' && Number.isFinite(cost) && cost >= 0 && cost <= MAX_PROVIDER_COST_USD;
}

/**
 * A reported cost in range, and not 0 for an answer that used tokens: Perplexity bills every served
 * answer, so a 0 comes from a proxy or server that zeroes the figure (QA18 booked such answers free).
 */
function believableCost(cost: number, counts: Pick<Usage, 'inputTokens' | 'outputTokens'>): boolean {
  return saneCost(cost) && (cost > 0 || !(counts.inputTokens > 0 || counts.outputTokens > 0));
}

/** Each part within its whole, as costBreakdown prices them (core/catalog/pricing.ts). */
function partsWithinWholes(usage: Usage): boolean {
  return (
    usage.cachedInputTokens <= usage.inputTokens &&
    usage.cacheWriteInputTokens <= usage.inputTokens - usage.cachedInputTokens &&
    (usage.cacheWrite1hInputTokens ?? 0) <= usage.cacheWriteInputTokens &&
    usage.reasoningTokens <= usage.outputTokens
  );
}

/** Every figure as the provider's own, with nothing unreported: the usual case, checked without allocating. */
export function saneUsage(usage: Usage): boolean {
  return (
    usage.unreported === undefined &&
    saneCount(usage.inputTokens) &&
    saneCount(usage.outputTokens) &&
    saneCount(usage.totalTokens) &&
    saneCount(usage.cachedInputTokens) &&
    saneCount(usage.cacheWriteInputTokens) &&
    saneCount(usage.reasoningTokens) &&
    (usage.cacheWrite1hInputTokens === undefined || saneCount(usage.cacheWrite1hInputTokens)) &&
    (usage.citationTokens === undefined || saneCount(usage.citationTokens)) &&
    (usage.searchQueries === undefined || saneCount(usage.searchQueries)) &&
    partsWithinWholes(usage) &&
    saneToolCalls(usage.hostedToolCalls) &&
    (usage.providerCostUsd === undefined || believableCost(usage.providerCostUsd, usage))
  );
}

/**
 * Whether the provider may sample more than once for one request, or bill output `max_tokens` does not
 * bound: tools it runs itself (web search, code execution, MCP servers: any tool not of type
 * `function`), a code execution `container`, predicted outputs (rejected prediction tokens are billed
 * as output). Such a request's output has no bound the request states; only the 10 million cap holds.
 */
function outputUnbounded(request: ChatRequest): boolean {
  if (request.mcp_servers !== undefined || request.container !== undefined || request.prediction !== undefined) return true;
  const tools = request.tools;
  if (!Array.isArray(tools)) return false;
  for (const tool of tools) if (tool === null || typeof tool !== 'object' || tool.type !== 'function') return true;
  return false;
}

/** The request's own allowance holds the reported output: the usual case, decided without the model's limit. */
export function withinRequestedOutput(outputTokens: number, request: ChatRequest): boolean {
  const requested = requestedOutputTokens(request);
  return requested !== undefined && outputTokens <= requested;
}

/**
 * The most output tokens a provider can have billed for `request`: its output allowance (its own per
 * choice, else the model's output limit `modelLimit`, times `n`), plus the reasoning the provider
 * reported, up to the model's output limit: Gemini and Perplexity report thinking beside the visible
 * output, which `max_tokens` may not bound (where it does, as on OpenAI and Anthropic, an honest
 * report never comes near the sum). Undefined when nothing bounds it (no allowance and no limit, or
 * outputUnbounded): only the 10 million cap holds.
 */
export function outputBound(request: ChatRequest, modelLimit: number | undefined, reportedReasoning: number): number | undefined {
  if (outputUnbounded(request)) return undefined;
  const allowance = outputAllowance(request, modelLimit);
  if (allowance === undefined) return undefined;
  const reasoning = isCount(reportedReasoning) ? Math.min(Math.ceil(reportedReasoning), modelLimit ?? allowance) : 0;
  return Math.min(allowance + reasoning, MAX_USAGE_TOKENS);
}

/** Keyway's estimate of the counts the provider did not report (the account stage makes it only when one is missing). */
export interface UsageEstimate {
  inputTokens: number;
  outputTokens: number;
}

export interface UsageLimits {
  /** outputBound: reported output above it is capped there, an estimated output never exceeds it. */
  outputTokens?: number;
  /** What a missing input or output count is booked at; 0 without it. */
  estimate?: UsageEstimate;
}

export interface CappedUsage {
  usage: Usage;
  /** The fields that were out of range, with what the provider sent (as text: NaN and Infinity survive). */
  capped: Record<string, string> | undefined;
  /** The counts booked at Keyway's estimate, with what the provider sent instead (`absent`, `-20`…). */
  estimated: Record<string, string> | undefined;
}

/** The provider's input or output count, or the estimate where it sent none usable; recorded in `capped` or `estimated`. */
function bookSide(
  fixed: Usage,
  reported: Usage,
  field: 'inputTokens' | 'outputTokens',
  estimate: number | undefined,
  bound: number | undefined,
  notes: { capped: Record<string, string>; estimated: Record<string, string> },
): void {
  const value = reported[field];
  const ceiling = Math.min(bound ?? MAX_USAGE_TOKENS, MAX_USAGE_TOKENS);
  const unreported = reported.unreported?.[field];
  if (unreported !== undefined || !isCount(value)) {
    notes.estimated[field] = unreported ?? String(value);
    fixed[field] = clampCount(estimate ?? 0, ceiling);
    return;
  }
  fixed[field] = clampCount(value, ceiling);
  // Rounding a fraction up is not capping: only a count above the ceiling is named.
  if (Math.ceil(value) > ceiling) notes.capped[field] = String(value);
}

function clampToolCalls(calls: Readonly<Record<string, number>>, capped: Record<string, string>): Record<string, number> {
  const fixed: Record<string, number> = {};
  for (const [name, value] of Object.entries(calls)) {
    const sane = typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_HOSTED_TOOL_CALLS;
    if (!sane) capped[`hostedToolCalls.${name}`] = String(value);
    fixed[name] = sane ? value : clampCount(value, MAX_HOSTED_TOOL_CALLS);
  }
  return fixed;
}

/** Other counts clamped: a fraction rounded up silently, anything out of range named. */
function clampOtherCounts(fixed: Usage, reported: Usage, capped: Record<string, string>): void {
  for (const field of [...OTHER_TOKEN_FIELDS, ...OPTIONAL_COUNT_FIELDS]) {
    const value = reported[field];
    if (value === undefined || saneCount(value)) continue;
    fixed[field] = clampCount(value, MAX_USAGE_TOKENS);
    if (!(isCount(value) && Math.ceil(value) <= MAX_USAGE_TOKENS)) capped[field] = String(value);
  }
}

type Part = 'cachedInputTokens' | 'cacheWriteInputTokens' | 'cacheWrite1hInputTokens' | 'reasoningTokens';

/** `fixed[part]` lowered to `whole` when above it, named with what the provider sent (unless already named). */
function clampPart(fixed: Usage, reported: Usage, part: Part, whole: number, capped: Record<string, string>): void {
  const value = fixed[part];
  if (value === undefined || value <= whole) return;
  fixed[part] = whole;
  capped[part] ??= String(reported[part]);
}

/** Each part within its whole, in the order pricing takes them: reads, then writes from what reads leave. */
function clampParts(fixed: Usage, reported: Usage, capped: Record<string, string>): void {
  clampPart(fixed, reported, 'cachedInputTokens', fixed.inputTokens, capped);
  clampPart(fixed, reported, 'cacheWriteInputTokens', fixed.inputTokens - fixed.cachedInputTokens, capped);
  clampPart(fixed, reported, 'cacheWrite1hInputTokens', fixed.cacheWriteInputTokens, capped);
  clampPart(fixed, reported, 'reasoningTokens', fixed.outputTokens, capped);
}

/**
 * A cost that is no number (or negative), or 0 for an answer that used tokens (as booked, estimates
 * included), is dropped, so the list price applies; a huge one is capped.
 */
function clampCost(fixed: Usage, cost: unknown, capped: Record<string, string>): void {
  if (cost === undefined || (typeof cost === 'number' && believableCost(cost, fixed))) return;
  capped.providerCostUsd = String(cost);
  if (typeof cost === 'number' && Number.isFinite(cost) && cost > MAX_PROVIDER_COST_USD) fixed.providerCostUsd = MAX_PROVIDER_COST_USD;
  else delete fixed.providerCostUsd;
}

const orUndefined = (record: Record<string, string>): Record<string, string> | undefined => (Object.keys(record).length > 0 ? record : undefined);

/** Unchanged (the same object, nothing allocated) when every figure is sane and within the bound: the usual case. */
export function capUsage(usage: Usage, limits: UsageLimits = {}): CappedUsage {
  const bound = limits.outputTokens;
  if (saneUsage(usage) && (bound === undefined || usage.outputTokens <= bound)) return { usage, capped: undefined, estimated: undefined };
  const { unreported: _named, ...fixed } = usage;
  const notes = { capped: {} as Record<string, string>, estimated: {} as Record<string, string> };
  bookSide(fixed, usage, 'inputTokens', limits.estimate?.inputTokens, undefined, notes);
  bookSide(fixed, usage, 'outputTokens', limits.estimate?.outputTokens, bound, notes);
  clampOtherCounts(fixed, usage, notes.capped);
  clampParts(fixed, usage, notes.capped);
  if (fixed.inputTokens !== usage.inputTokens || fixed.outputTokens !== usage.outputTokens) fixed.totalTokens = fixed.inputTokens + fixed.outputTokens;
  if (usage.hostedToolCalls !== undefined && !saneToolCalls(usage.hostedToolCalls)) fixed.hostedToolCalls = clampToolCalls(usage.hostedToolCalls, notes.capped);
  clampCost(fixed, usage.providerCostUsd, notes.capped);
  return { usage: fixed, capped: orUndefined(notes.capped), estimated: orUndefined(notes.estimated) };
}
