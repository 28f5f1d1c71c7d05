// The worst-case cost of a request on one candidate, at list price: the prompt counted from above
// (services.pricing.promptTokenBound: its UTF-8 bytes, which no byte-level tokenizer exceeds), plus every output token the request allows (the larger
// of `max_tokens` and `max_completion_tokens`, else the key's `max_tokens_default` that Keyway sends in
// their place, else the model's output limit), times `n` choices. Shared by the
// cost-cap and approvals policies so both judge the same figure. Money is kept in integer
// nano-dollars (core/catalog/nano-usd.ts), the unit costs are booked to: sums of reservations never
// drift the way float dollars do, and a settled cost is counted as booked.

import { toNanosCeil } from '../../core/catalog/nano-usd.ts';
import type { Endpoint, RequestContext } from '../../core/spec/lifecycle.ts';
import type { ProviderKeyRecord } from '../../core/spec/provider.ts';
import type { PricingService } from '../../core/spec/services.ts';
import { choicesOf, outputAllowance, requestedOutputTokens } from '../../core/wire/output-allowance.ts';

/**
 * The output tokens a request may produce; undefined when neither the request nor the model bounds it.
 * The core's allowance, the same figure an absurd usage report is capped at (core/accounting/usage-limits.ts).
 */
export const maxOutputTokens = outputAllowance;

/**
 * What a worst case assumed for a model's output, so a refusal can say why it is so large: the spec
 * reserves the model's whole output limit when a request sets none (64,000 tokens of Claude Opus, $1.60
 * for "hi"), and a client that never sends `max_tokens` could not tell why a budget with ~0 % spent
 * refused it (QA14). Read again on the refusal path only, never per request.
 */
export interface OutputAssumption {
  provider: string;
  model: string;
  /** Output tokens per choice. */
  perChoice: number;
  choices: number;
  /**
   * What bounds the output: the request's own limit, else the key's `max_tokens_default` Keyway sends
   * in its place, else the model's whole output limit.
   */
  from: 'request' | 'key_max_tokens_default' | 'model_output_limit';
}

/** Undefined when the model is unpriced, has no output bound, or output costs nothing (embeddings): then output explains nothing. */
export function outputAssumption(pricing: PricingService, context: RequestContext, provider: string, model: string): OutputAssumption | undefined {
  const { request } = context;
  const price = pricing.price(provider, model);
  if (price === undefined || !((price.worstOutputPerToken ?? price.outputPerToken) > 0)) return undefined;
  const choices = choicesOf(request);
  const requested = requestedOutputTokens(request);
  if (requested !== undefined) return { provider, model, perChoice: requested, choices, from: 'request' };
  // The largest over the keys that may serve it, as the plan reserves (planAll).
  const unlimited = namesNoOutputLimit(context);
  let assumed: OutputAssumption | undefined;
  for (const candidate of context.candidates) {
    if (candidate.provider !== provider || candidate.model !== model) continue;
    const keyDefault = unlimited ? sentOutputDefault(candidate.key) : undefined;
    const perChoice = keyDefault ?? price.maxOutputTokens;
    if (perChoice === undefined) return undefined;
    if (assumed === undefined || perChoice > assumed.perChoice)
      assumed = { provider, model, perChoice, choices, from: keyDefault === undefined ? 'model_output_limit' : 'key_max_tokens_default' };
  }
  if (assumed !== undefined || price.maxOutputTokens === undefined) return assumed;
  return { provider, model, perChoice: price.maxOutputTokens, choices, from: 'model_output_limit' };
}

/** A field that bounds output, named anywhere in the body (even as `null`). */
const OUTPUT_LIMIT_FIELD = /"max_(?:completion_|output_)?tokens"/;

/**
 * Whether a request names no output limit at all, so that each adapter sends its key's
 * `max_tokens_default` in its place (providers/openai-compatible/request.ts, providers/openai/responses.ts,
 * providers/anthropic/request.ts…). Read from the body as sent: a `null` limit reaches an OpenAI
 * upstream as it is, "no limit", not as the default, and a body not read from HTTP is unknown; then the
 * model's output limit stays the bound.
 */
function namesNoOutputLimit(context: RequestContext): boolean {
  const { request, bodyText } = context;
  return request.max_tokens === undefined && request.max_completion_tokens === undefined && bodyText !== undefined && !OUTPUT_LIMIT_FIELD.test(bodyText);
}

/** The key's `max_tokens_default`, as the adapters send it; undefined without one. */
function sentOutputDefault(key: ProviderKeyRecord): number | undefined {
  const value = key.settings.max_tokens_default;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** The request field that bounds output in the caller's dialect. */
export function outputLimitField(endpoint: Endpoint): string {
  if (endpoint === 'responses') return 'max_output_tokens';
  if (endpoint === 'chat') return 'max_tokens (or max_completion_tokens)';
  return 'max_tokens';
}

/**
 * The sentence a refusal adds when the worst case assumed the model's output limit; empty when the
 * request set its own. `effect` ends it: what a smaller reservation would change.
 */
export function outputLimitHint(assumption: OutputAssumption | undefined, endpoint: Endpoint, effect: string): string {
  if (assumption === undefined || assumption.from === 'request') return '';
  const choices = assumption.choices > 1 ? ` for each of its ${assumption.choices} choices` : '';
  const tokens = `${assumption.perChoice.toLocaleString('en-US')} tokens${choices}`;
  const assumed =
    assumption.from === 'key_max_tokens_default'
      ? `Keyway sends the ${assumption.provider} key's max_tokens_default of ${tokens} in its place, and its worst case assumed that`
      : `its worst case assumed ${assumption.model}'s whole output limit of ${tokens}`;
  return ` The request sets no output limit, so ${assumed}; setting ${outputLimitField(endpoint)} reserves only what it allows${effect}.`;
}

/** The error fields that say what output the worst case assumed: `worst_case_output_tokens` (all choices) and where it came from. */
export function outputAssumptionFields(assumption: OutputAssumption | undefined): Record<string, unknown> {
  if (assumption === undefined) return {};
  return {
    worst_case_output_tokens: assumption.perChoice * assumption.choices,
    worst_case_output_tokens_from: assumption.from,
  };
}

/** The model behind a provider's worst case in the plan (its dearest candidate model). */
export function dearestModel(plan: WorstCasePlan, provider: string): string | undefined {
  for (const entry of plan) {
    if (entry.provider !== provider) continue;
    for (const planned of entry.models) if (planned.nanos !== undefined && planned.nanos === entry.nanos) return planned.model;
  }
  return undefined;
}

/**
 * Which cache writes a request may be billed for on a provider that writes only what is marked
 * (ProviderAdapter.cacheWrites): none when its body names no `cache_control`; 5-minute ones when no
 * marker could ask for an hour; else every kind. Read from the body as the client sent it, so a marker
 * any dialect passes through (a content block, a tool, the request's top level) is seen; a prompt that
 * merely quotes the words is judged as marked, which can only over-reserve. Without the text (a
 * request not read from an HTTP body), or when the body continues a stored conversation, every kind.
 */
export type CacheWriteMarks = 'none' | 'five-minute' | 'any';

export function cacheWriteMarks(bodyText: string | undefined): CacheWriteMarks {
  // A continued conversation replays stored turns the body does not show: their markers are unknown.
  if (bodyText === undefined || bodyText.includes('previous_response_id')) return 'any';
  if (!bodyText.includes('cache_control')) return 'none';
  // Anthropic's only longer lifetime is `"ttl": "1h"`; any "1h" anywhere is taken as one.
  return bodyText.includes('1h') ? 'any' : 'five-minute';
}

/** The dearest rate a prompt token of this request can be billed at, base or tier. */
function inputRate(
  rates: { worstInputPerToken?: number; inputPerToken?: number; fiveMinuteWriteInputPerToken?: number },
  fallback: number,
  marked: boolean,
  marks: CacheWriteMarks,
): number {
  const worst = rates.worstInputPerToken ?? fallback;
  if (!marked || marks === 'any') return worst;
  return (marks === 'none' ? rates.inputPerToken : rates.fiveMinuteWriteInputPerToken) ?? worst;
}

/**
 * The worst case in nano-dollars of serving `request` with `provider`'s `model`, or undefined when
 * the model is unpriced (or has neither a request nor a model output bound: it cannot be bounded).
 * `marks`: the cache writes the request may be billed for (cacheWriteMarks), every kind by default; a
 * function is called only for a provider that bills marked writes (its scans of the body are a fifth
 * of a plan's time, for nothing on every other provider). `outputDefault`: the output limit sent for a
 * request that sets none (the key's `max_tokens_default`), in place of the model's.
 */
export function worstCaseNanos(
  pricing: PricingService,
  request: RequestContext['request'],
  provider: string,
  model: string,
  promptTokens: number,
  marks: CacheWriteMarks | (() => CacheWriteMarks) = 'any',
  outputDefault?: number,
): number | undefined {
  const price = pricing.price(provider, model);
  if (price === undefined) return undefined;
  const output = maxOutputTokens(request, outputDefault ?? price.maxOutputTokens);
  if (output === undefined) return undefined;
  // The dearest rates (cache writes the request can cause, reasoning) and per-request fees, where the pricing service knows them.
  const marked = price.cacheWritesMarked === true;
  const writes = !marked ? 'any' : typeof marks === 'function' ? marks() : marks;
  let input = inputRate(price, price.inputPerToken, marked, writes);
  let outputRate = price.worstOutputPerToken ?? price.outputPerToken;
  // A request that asks for a processing tier (OpenAI's priority) is billed at its rates.
  const tier = serviceTierOf(request, price.serviceTiers);
  if (tier !== undefined) {
    input = Math.max(input, tier.worstInputPerToken);
    outputRate = Math.max(outputRate, tier.worstOutputPerToken);
  }
  // The bound is above the real prompt: if it may cross a long-context threshold, the whole call may be
  // billed at that tier's rates; if it cannot, neither can the real prompt.
  for (const tier of price.tiers ?? []) {
    if (promptTokens <= tier.aboveInputTokens) break;
    input = Math.max(input, inputRate(tier, tier.worstInputPerToken, marked, writes));
    outputRate = Math.max(outputRate, tier.worstOutputPerToken);
  }
  const searches = (price.perSearchUsd ?? 0) > 0 ? boundedSearches(request) : 0;
  return toNanosCeil(promptTokens * input + output * outputRate + (price.perRequestUsd ?? 0) + searches * (price.perSearchUsd ?? 0));
}

/** The processing tier's rates a request asks to be served at (`service_tier`), when the model has them. */
function serviceTierOf<Rates>(request: RequestContext['request'], tiers: Readonly<Record<string, Rates>> | undefined): Rates | undefined {
  const asked: unknown = (request as { service_tier?: unknown }).service_tier;
  return tiers === undefined || typeof asked !== 'string' || !Object.hasOwn(tiers, asked) ? undefined : tiers[asked];
}

/**
 * The searches a request's web search tools may make, where each says (`max_uses` on Anthropic's
 * `web_search_*` tool): a tool without a bound adds nothing, as the model decides how often it searches
 * (docs/policies.md, "Why the cap cannot be overshot").
 */
export function boundedSearches(request: RequestContext['request']): number {
  const tools: unknown = (request as { tools?: unknown }).tools;
  if (!Array.isArray(tools)) return 0;
  let searches = 0;
  for (const tool of tools) {
    if (typeof tool !== 'object' || tool === null) continue;
    const { type, max_uses: maxUses } = tool as { type?: unknown; max_uses?: unknown };
    if (typeof type === 'string' && type.startsWith('web_search_') && typeof maxUses === 'number' && Number.isInteger(maxUses) && maxUses > 0)
      searches += maxUses;
  }
  return searches;
}

/** One provider among a request's candidates: its worst case (the largest over its models) and each model's. */
export interface ProviderPlan {
  provider: string;
  nanos: number | undefined;
  models: Array<{ model: string; nanos: number | undefined }>;
}

/**
 * The plan, one entry per distinct provider in candidate order. Arrays, not Maps: a request has a few
 * candidates, and a Map and its storage per provider per request cost more than the scans they save.
 */
export type WorstCasePlan = ProviderPlan[];

/** The worst case planned for one provider's model; undefined when unpriced or not among the candidates. */
export function plannedNanos(plan: WorstCasePlan, provider: string, model: string): number | undefined {
  for (const entry of plan) {
    if (entry.provider !== provider) continue;
    for (const planned of entry.models) if (planned.model === model) return planned.nanos;
  }
  return undefined;
}

/**
 * Where a request keeps the plan made for its current candidates (its own state map, not a WeakMap
 * entry per request): approvals and cost-cap judge the same figures.
 */
const PLAN_STATE = 'cost-cap/worst-case-plan';
interface KnownPlan {
  candidates: RequestContext['candidates'];
  plan: WorstCasePlan;
  /** Counted with the providers' tokenizers (refineWorstCasePlan). */
  refined?: boolean;
}

/**
 * Each distinct provider among the candidates, with its worst case (the largest over its models) and
 * each model's. Computed once per request for its current candidates; callers read the providers they
 * judge (the plan is shared: never change it).
 */
export function worstCasePlan(pricing: PricingService, context: RequestContext): WorstCasePlan {
  let known = context.state.get(PLAN_STATE) as KnownPlan | undefined;
  if (known === undefined || known.candidates !== context.candidates) {
    known = { candidates: context.candidates, plan: planAll(pricing, context) };
    context.state.set(PLAN_STATE, known);
  }
  return known.plan;
}

/**
 * The plan again with each candidate's prompt counted by its provider's own tokenizer where there is
 * one (PricingService.countPromptTokens: exact for that model, never above the bound), and kept as the
 * request's plan, so cost-cap and approvals judge the same, tighter, figures from then on. Only for
 * a request the bound alone would refuse or send for approval: counting costs tens of microseconds a
 * kilobyte. Candidates without a tokenizer keep the bound.
 */
export async function refineWorstCasePlan(pricing: PricingService, context: RequestContext): Promise<WorstCasePlan> {
  const known = context.state.get(PLAN_STATE) as KnownPlan | undefined;
  if (known !== undefined && known.candidates === context.candidates && known.refined === true) return known.plan;
  const candidates = context.candidates;
  const counted = await Promise.all(candidates.map((candidate) => pricing.countPromptTokens(candidate.provider, candidate.model, context.request)));
  const byCandidate = new Map<(typeof candidates)[number], number | undefined>();
  for (const [index, candidate] of candidates.entries()) byCandidate.set(candidate, counted[index]);
  const plan = planAll(pricing, context, (candidate) => byCandidate.get(candidate));
  context.state.set(PLAN_STATE, { candidates, plan, refined: true } satisfies KnownPlan);
  return plan;
}

function planAll(
  pricing: PricingService,
  context: RequestContext,
  countedFor: (candidate: RequestContext['candidates'][number]) => number | undefined = () => undefined,
): WorstCasePlan {
  const plan: WorstCasePlan = [];
  let bound: number | undefined;
  let marks: CacheWriteMarks | undefined;
  const marksOfBody = (): CacheWriteMarks => (marks ??= cacheWriteMarks(context.bodyText));
  let unlimited: boolean | undefined;
  // Each model once per output default its keys send: a key without one is bounded by the model's limit.
  const planned: Array<{ provider: string; model: string; outputDefault: number | undefined }> = [];
  for (const candidate of context.candidates) {
    let outputDefault = sentOutputDefault(candidate.key);
    if (outputDefault !== undefined && !(unlimited ??= namesNoOutputLimit(context))) outputDefault = undefined;
    let entry: ProviderPlan | undefined;
    for (const known of plan) {
      if (known.provider === candidate.provider) {
        entry = known;
        break;
      }
    }
    if (entry === undefined) {
      entry = { provider: candidate.provider, nanos: undefined, models: [] };
      plan.push(entry);
    }
    if (planned.some((done) => done.provider === candidate.provider && done.model === candidate.model && done.outputDefault === outputDefault)) continue;
    planned.push({ provider: candidate.provider, model: candidate.model, outputDefault });
    bound ??= pricing.promptTokenBound(context.request);
    const nanos = worstCaseNanos(pricing, context.request, candidate.provider, candidate.model, countedFor(candidate) ?? bound, marksOfBody, outputDefault);
    addModel(entry, candidate.model, nanos);
  }
  return plan;
}

/** A model's worst case on one key into its provider's entry: the largest over its keys, undefined if any key's cannot be bounded. */
function addModel(entry: ProviderPlan, model: string, nanos: number | undefined): void {
  const known = entry.models.find((planned) => planned.model === model);
  if (known === undefined) entry.models.push({ model, nanos });
  else known.nanos = known.nanos === undefined || nanos === undefined ? undefined : Math.max(known.nanos, nanos);
  entry.nanos = undefined;
  for (const planned of entry.models)
    if (planned.nanos !== undefined && (entry.nanos === undefined || planned.nanos > entry.nanos)) entry.nanos = planned.nanos;
}

let lastDay: { date: string; start: number; end: number } | undefined;

/** The UTC day of an instant (`2026-12-05`), its start and the next midnight, in epoch milliseconds. */
export function utcDay(now: number): { date: string; start: number; end: number } {
  // The same day for every request until midnight: no Date objects on the hot path.
  if (lastDay !== undefined && now >= lastDay.start && now < lastDay.end) return lastDay;
  lastDay = dayOf(now);
  return lastDay;
}

function dayOf(now: number): { date: string; start: number; end: number } {
  const day = new Date(now);
  const start = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
  return { date: new Date(start).toISOString().slice(0, 10), start, end: start + 86_400_000 };
}
