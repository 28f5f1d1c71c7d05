// Keyway's own rate limits, per gateway key (the key's `requests_per_minute`, `tokens_per_minute`
// settings) and per team (`rate_limits` in the team's permissions), in fixed one-minute windows of
// services.counters (shared across instances when the counters are).
//
//   requests  counted at `auth`: one hit per request; over the limit → 429. A refused request still
//             counts in its window (the window ends soon; a client retrying early gains nothing).
//   tokens    checked at `call`, before the upstream call: refused when the window's tokens so far
//             plus this request's worst case (estimated prompt + the larger of max_tokens and max_completion_tokens) exceed the limit;
//             otherwise the prompt estimate is counted at once (so concurrent requests see it), and
//             at `account` the output tokens (and any prompt tokens above the estimate) are added.
//             Counts only ever go up: no counters implementation has to support negative hits.
//             A worst case above a limit itself can never fit any window: refused at once, without
//             Retry-After and with `x-should-retry: false`, before any counter is read, at the
//             `route` stage, so before the `call` stage's approvals: an approval asked for such a
//             request would page the team's admins for a re-send refused all the same (QA20).
//
// A key without limits and a request without a limited team pay a few property reads.

import { KeywayError } from '../../core/errors.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import type { Counters } from '../../core/spec/counters.ts';
import type { SnapshotService } from '../../core/spec/services.ts';
import { requestedOutputTokens } from '../../core/wire/output-allowance.ts';
import { teamOf, type TeamPolicyOptions, type TeamView } from '../../plugins/teams/types.ts';
import { outputLimitField } from '../cost-cap/worst-case.ts';

export const RATE_LIMITS_PLUGIN = 'rate-limits';
export const WINDOW_MS = 60_000;

type MaybePromise<T> = T | Promise<T>;

interface Limit {
  scope: 'key' | 'team';
  counter: string;
  value: number;
}

/** What the call stage counted, for the account stage. */
interface TokenState {
  limits: Limit[];
  estimate: number;
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

function then<Value>(value: MaybePromise<Value>, next: (value: Value) => MaybePromise<void>): MaybePromise<void> {
  return value instanceof Promise ? value.then(next) : next(value);
}

export function secondsUntilWindowEnds(now: number): number {
  return Math.max(1, Math.ceil((WINDOW_MS - (now % WINDOW_MS)) / 1000));
}

function ownerOf(limit: Limit): string {
  return limit.scope === 'key' ? "this API key's" : "the team's";
}

function refusal(limit: Limit, unit: 'requests' | 'tokens', now: number): KeywayError {
  const retryAfterSeconds = secondsUntilWindowEnds(now);
  return new KeywayError(
    'rate_limited',
    { detail: `Rate limit reached: ${ownerOf(limit)} limit of ${limit.value} ${unit} per minute. Retry in ${retryAfterSeconds} s.` },
    {
      retryAfterSeconds,
      extra: { limit_scope: limit.scope, limit_unit: unit },
      // OpenAI's names for the window a client hit, so SDKs and dashboards that read them understand Keyway's own limits too.
      headers: {
        [`x-ratelimit-limit-${unit}`]: String(limit.value),
        [`x-ratelimit-remaining-${unit}`]: '0',
        [`x-ratelimit-reset-${unit}`]: `${retryAfterSeconds}s`,
      },
    },
  );
}

function limitsOf(
  context: RequestContext,
  team: TeamView | undefined,
  unit: 'requests_per_minute' | 'tokens_per_minute',
  kind: 'req' | 'tok',
): Limit[] | undefined {
  const keyLimit = positive(context.principal.settings[unit]);
  const teamLimit = team === undefined ? undefined : positive(team.permissions.rate_limits?.[unit]);
  if (keyLimit === undefined && teamLimit === undefined) return undefined;
  const limits: Limit[] = [];
  if (keyLimit !== undefined) limits.push({ scope: 'key', counter: `rl:${kind}:key:${context.principal.keyId}`, value: keyLimit });
  if (teamLimit !== undefined && team !== undefined) limits.push({ scope: 'team', counter: `rl:${kind}:team:${team.id}`, value: teamLimit });
  return limits;
}

function countRequest(counters: Counters, limits: Limit[], index: number, now: () => number): MaybePromise<void> {
  const limit = limits[index];
  if (limit === undefined) return;
  return then(counters.hit(limit.counter, 1, WINDOW_MS), (total) => {
    if (total > limit.value) throw refusal(limit, 'requests', now());
    return countRequest(counters, limits, index + 1, now);
  });
}

/** What a request's worst case is made of, for the refusal of one that can never fit. */
interface WorstCase {
  estimate: number;
  perChoice: number;
  choices: number;
  total: number;
}

/** What the request must change to fit `limit`: the output allowance when the prompt leaves room, else the prompt. */
function smallerRequestAdvice(limit: Limit, worst: WorstCase, endpoint: RequestContext['endpoint']): string {
  const room = Math.floor((limit.value - worst.estimate) / worst.choices);
  if (worst.perChoice > 0 && room >= 1) {
    const choices = worst.choices > 1 ? ` (for each of its ${worst.choices} choices)` : '';
    return `Lower ${outputLimitField(endpoint)} to at most ${room}${choices}, or ask an admin for a higher limit.`;
  }
  return `Send a shorter ${endpoint === 'embeddings' ? 'input' : 'prompt'}, or ask an admin for a higher limit.`;
}

/**
 * A worst case above the limit itself fits no window: waiting does not help, so the answer has no
 * Retry-After and says `x-should-retry: false` (the official SDKs otherwise retry a 429 twice, each
 * after the window's end: QA saw 101 s spent to be refused three times).
 */
function neverFits(limit: Limit, worst: WorstCase, endpoint: RequestContext['endpoint']): KeywayError {
  const output = worst.perChoice > 0 ? `, plus ${worst.perChoice * worst.choices} output tokens it allows` : '';
  return new KeywayError(
    'rate_limited',
    {
      detail:
        `Rate limit cannot be met: ${ownerOf(limit)} limit of ${limit.value} tokens per minute is below this request's worst case of about ${worst.total} tokens ` +
        `(its ${endpoint === 'embeddings' ? 'input' : 'prompt'}, estimated at about ${worst.estimate}${output}), so no minute can take it and retrying does not help. ` +
        smallerRequestAdvice(limit, worst, endpoint),
    },
    {
      extra: { limit_scope: limit.scope, limit_unit: 'tokens', worst_case_tokens: worst.total },
      headers: { 'x-should-retry': 'false', 'x-ratelimit-limit-tokens': String(limit.value) },
    },
  );
}

/** Refuses when any window cannot take the worst case; then counts the prompt estimate in each. */
function checkTokens(counters: Counters, limits: Limit[], index: number, estimate: number, worstCase: number, now: () => number): MaybePromise<void> {
  const limit = limits[index];
  if (limit === undefined) {
    for (const each of limits) void Promise.resolve(counters.hit(each.counter, estimate, WINDOW_MS)).catch(() => undefined);
    return;
  }
  return then(counters.hit(limit.counter, 0, WINDOW_MS), (total) => {
    if (total + worstCase > limit.value) throw refusal(limit, 'tokens', now());
    return checkTokens(counters, limits, index + 1, estimate, worstCase, now);
  });
}

function worstCaseOf(context: RequestContext, estimate: number): WorstCase {
  const request = context.request;
  const perChoice = requestedOutputTokens(request) ?? 0;
  const choices = positive(request.n) ?? 1;
  return { estimate, perChoice, choices, total: estimate + perChoice * choices };
}

/** Kept under this name for callers of the factory. */
export type PolicyOptions = TeamPolicyOptions;

export function rateLimitsPolicy(options: PolicyOptions = {}): PluginDefinition {
  const lookup = options.lookup ?? teamOf;
  const stateKey = options.name ?? RATE_LIMITS_PLUGIN;
  return {
    name: options.name ?? RATE_LIMITS_PLUGIN,
    version: '1.0.0',
    apiVersion: 1,
    kind: 'policy',
    description: 'Requests and tokens per minute, per gateway key and per team',
    dependencies: ['teams'],
    setup({ services, logger }) {
      const now = (): number => services.clock.now();
      const report = (error: unknown): void =>
        logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'rate-limits: counting tokens failed');
      return {
        hooks: {
          auth(context) {
            const limits = limitsOf(context, lookup(services.snapshot, context), 'requests_per_minute', 'req');
            if (limits === undefined) return;
            return countRequest(services.counters, limits, 0, now);
          },
          route(context) {
            if (context.endpoint === 'count_tokens') return;
            const limits = limitsOf(context, lookup(services.snapshot, context), 'tokens_per_minute', 'tok');
            if (limits === undefined) return;
            const worst = worstCaseOf(context, services.pricing.estimatePromptTokens(context.request));
            // Every limit is judged alone, before any window is read: a key limit's window being full
            // must not hide a team limit no window can meet.
            for (const limit of limits) if (worst.total > limit.value) throw neverFits(limit, worst, context.endpoint);
          },
          call(context) {
            if (context.endpoint === 'count_tokens') return;
            const limits = limitsOf(context, lookup(services.snapshot, context), 'tokens_per_minute', 'tok');
            if (limits === undefined) return;
            const estimate = services.pricing.estimatePromptTokens(context.request);
            const worst = worstCaseOf(context, estimate);
            const state: TokenState = { limits, estimate };
            return then(checkTokens(services.counters, limits, 0, estimate, worst.total, now), () => {
              context.state.set(stateKey, state);
            });
          },
          account(context, outcome) {
            const state = context.state.get(stateKey) as TokenState | undefined;
            const usage = outcome.usage;
            if (state === undefined || usage === undefined) return;
            const extra = usage.outputTokens + Math.max(0, usage.inputTokens - state.estimate);
            if (!(extra > 0)) return;
            for (const limit of state.limits) void Promise.resolve(services.counters.hit(limit.counter, extra, WINDOW_MS)).catch(report);
          },
        },
      };
    },
  };
}

export const rateLimitsPlugin = rateLimitsPolicy();
export default rateLimitsPlugin;
