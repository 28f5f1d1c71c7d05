// The numbers behind /metrics, kept in memory and updated from the `account` hook. Per request the
// work is a few map look-ups (endpoint → provider → model, each cached) and a handful of additions
// to plain numbers and fixed bucket arrays: no allocation once a series exists.

import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import { DURATION_BUCKETS, FIRST_TOKEN_BUCKETS, Histogram, TOKEN_BUCKETS } from './histogram.ts';
import { errorCodeLabel, escapeLabelValue, OTHER, operationName, POLICY_CODES, providerName, reasonLabel, statusClassIndex } from './labels.ts';

export const TOKEN_TYPES = ['input', 'output', 'cached_input', 'cache_write', 'reasoning'] as const;

/** At most this many endpoint × provider × model series; past it, new models count under `_other`. */
export const MAX_ROUTE_SERIES = 2_000;
/** Raw model names remembered per endpoint and provider (catalog look-ups are cached up to this). */
const MAX_CACHED_NAMES = 512;
const MAX_PROVIDERS = 64;
const PROVIDER_NAME = /^[a-z0-9][a-z0-9_.-]{0,39}$/;

/** Everything counted for one endpoint, provider and model. */
export class RouteSeries {
  /** By error code ('' for an answer), then by status class index (statusClassIndex). */
  readonly requests = new Map<string, Float64Array>();
  /** Request duration by status class index. */
  readonly durations: Array<Histogram | undefined> = [];
  firstToken: Histogram | undefined;
  /** By TOKEN_TYPES index. */
  readonly tokens: Array<Histogram | undefined> = [];
  costUsd = 0;
  pricedRequests = 0;
  unpricedRequests = 0;
  estimatedUsage = 0;
  fallbackAttempts = 0;

  constructor(
    /** The rendered labels: `endpoint="chat",gen_ai_operation_name="chat",…`. */
    readonly labels: string,
  ) {}
}

/** Decides whether a model may be a label value: the catalog knows it for that provider. */
export type KnownModel = (provider: string, model: string) => boolean;

export class MetricsCollector {
  /** endpoint → provider → raw model name → series. */
  private readonly routes = new Map<string, Map<string, Map<string, RouteSeries>>>();
  /** Every series, in creation order, for rendering. */
  readonly series: RouteSeries[] = [];
  /** Series by their rendered labels: raw names that map to the same label share one. */
  private readonly byLabels = new Map<string, RouteSeries>();
  /** Upstream attempt failures: provider label → reason label → count. */
  readonly upstreamErrors = new Map<string, Map<string, number>>();
  /** Candidates passed over without an upstream call (their translation refused the request): provider label → reason label → count. */
  readonly skippedCandidates = new Map<string, Map<string, number>>();
  /** Policy refusals by error code. */
  readonly policyRefusals = new Map<string, number>();
  budgetRefusals = 0;
  /** Requests folded into `_other` because the series limit was reached. */
  overflowed = 0;
  private readonly providers = new Set<string>();

  constructor(private readonly knownModel: KnownModel) {}

  /** The account hook: exactly once per booked request. */
  record(context: RequestContext, outcome: RequestOutcome): void {
    const served = context.served;
    const lastAttempt = context.attempts.length > 0 ? context.attempts[context.attempts.length - 1] : undefined;
    const candidate = context.candidates[0];
    // Who answered, else who failed last, else the model the request named (a refusal is counted under
    // what was asked for: with cost_optimized routing the first candidate is another provider's model, and
    // a team refused 'google' was counted under anthropic), else who would have been called first.
    const resolved = context.resolution?.provider === undefined || context.resolution.modelClass !== undefined ? undefined : context.resolution;
    const provider = served?.provider ?? lastAttempt?.provider ?? resolved?.provider ?? candidate?.provider ?? '';
    const model = served?.model ?? lastAttempt?.model ?? resolved?.model ?? candidate?.model ?? '';
    const route = this.routeFor(context.endpoint, provider, model);
    const classIndex = statusClassIndex(outcome.status);
    const code = errorCodeLabel(outcome.error?.code);
    let byClass = route.requests.get(code);
    if (byClass === undefined) {
      byClass = new Float64Array(6);
      route.requests.set(code, byClass);
    }
    byClass[classIndex] = (byClass[classIndex] as number) + 1;
    let duration = route.durations[classIndex];
    if (duration === undefined) {
      duration = new Histogram(DURATION_BUCKETS);
      route.durations[classIndex] = duration;
    }
    duration.observe(outcome.latencyMs / 1000);
    if (outcome.streamed && outcome.error === undefined && served?.firstByteAt !== undefined) {
      route.firstToken ??= new Histogram(FIRST_TOKEN_BUCKETS);
      route.firstToken.observe(Math.max(0, served.firstByteAt - context.startedAt) / 1000);
    }
    const usage = outcome.usage;
    if (usage !== undefined) {
      observeTokens(route, 0, usage.inputTokens, true);
      observeTokens(route, 1, usage.outputTokens, true);
      observeTokens(route, 2, usage.cachedInputTokens, false);
      observeTokens(route, 3, usage.cacheWriteInputTokens, false);
      observeTokens(route, 4, usage.reasoningTokens, false);
      if (outcome.usageEstimated === true) route.estimatedUsage += 1;
      if (served !== undefined) {
        if (outcome.costUsd === undefined) route.unpricedRequests += 1;
        else {
          route.costUsd += outcome.costUsd;
          route.pricedRequests += 1;
        }
      }
    }
    // A skipped candidate never called its provider: it is neither an upstream error nor a fallback
    // attempt, and has its own counter (an operator sees a route that keeps refusing a feature).
    let upstreamAttempts = served === undefined ? 0 : 1;
    for (let index = 0; index < context.attempts.length; index++) {
      const attempt = context.attempts[index];
      if (attempt === undefined) continue;
      if (attempt.skipped === true) {
        this.countByReason(this.skippedCandidates, attempt.provider, attempt.reason);
        continue;
      }
      upstreamAttempts++;
      this.countByReason(this.upstreamErrors, attempt.provider, attempt.reason);
    }
    if (upstreamAttempts > 1) route.fallbackAttempts += upstreamAttempts - 1;
    if (code !== '' && POLICY_CODES.has(code)) {
      this.policyRefusals.set(code, (this.policyRefusals.get(code) ?? 0) + 1);
      if (code === 'budget_exceeded') this.budgetRefusals += 1;
    }
  }

  private countByReason(counts: Map<string, Map<string, number>>, provider: string, reason: string): void {
    const label = this.providerLabel(provider);
    let byReason = counts.get(label);
    if (byReason === undefined) {
      byReason = new Map();
      counts.set(label, byReason);
    }
    const reasonValue = byReason.has(reason) ? reason : reasonLabel(reason);
    byReason.set(reasonValue, (byReason.get(reasonValue) ?? 0) + 1);
  }

  /** Provider names come from loaded plugins; still, only a bounded set of plain names becomes labels. */
  private providerLabel(provider: string): string {
    if (provider === '' || this.providers.has(provider)) return provider;
    if (this.providers.size >= MAX_PROVIDERS || !PROVIDER_NAME.test(provider)) return OTHER;
    this.providers.add(provider);
    return provider;
  }

  private routeFor(endpoint: string, provider: string, model: string): RouteSeries {
    let byProvider = this.routes.get(endpoint);
    if (byProvider === undefined) {
      byProvider = new Map();
      this.routes.set(endpoint, byProvider);
    }
    let byModel = byProvider.get(provider);
    if (byModel === undefined) {
      byModel = new Map();
      byProvider.set(provider, byModel);
    }
    const cached = byModel.get(model);
    if (cached !== undefined) return cached;
    const providerValue = this.providerLabel(provider);
    const modelValue = model === '' ? '' : providerValue !== OTHER && this.knownModel(provider, model) ? model : OTHER;
    const series = this.seriesFor(endpoint, providerValue, modelValue);
    // Names outside the catalog are not remembered past a bound: a client can send endless ones.
    if (modelValue !== OTHER || byModel.size < MAX_CACHED_NAMES) byModel.set(model, series);
    return series;
  }

  private seriesFor(endpoint: string, provider: string, model: string): RouteSeries {
    const labels = routeLabels(endpoint, provider, model);
    const existing = this.byLabels.get(labels);
    if (existing !== undefined) return existing;
    if (this.series.length >= MAX_ROUTE_SERIES && model !== OTHER) {
      this.overflowed += 1;
      return this.seriesFor(endpoint, provider, OTHER);
    }
    const series = new RouteSeries(labels);
    this.byLabels.set(labels, series);
    this.series.push(series);
    return series;
  }
}

function observeTokens(route: RouteSeries, index: number, tokens: number, always: boolean): void {
  if (!(tokens > 0) && !always) return;
  let histogram = route.tokens[index];
  if (histogram === undefined) {
    histogram = new Histogram(TOKEN_BUCKETS);
    route.tokens[index] = histogram;
  }
  histogram.observe(Number.isFinite(tokens) && tokens > 0 ? tokens : 0);
}

/** Endpoints are the operations' own names (set by code, not by clients); still escaped and bounded. */
function routeLabels(endpoint: string, provider: string, model: string): string {
  const endpointValue = /^[a-z0-9_]{1,40}$/.test(endpoint) ? endpoint : OTHER;
  return (
    `endpoint="${endpointValue}",gen_ai_operation_name="${escapeLabelValue(operationName(endpointValue))}",` +
    `gen_ai_provider_name="${escapeLabelValue(provider === '' || provider === OTHER ? provider : providerName(provider))}",` +
    `gen_ai_request_model="${escapeLabelValue(model)}"`
  );
}
