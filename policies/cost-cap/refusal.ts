// The answers cost-cap refuses with: 402 budget_exceeded (with a Retry-After of seconds when only
// reservations in flight filled the budget, until midnight when spend did, none when the request can
// never fit), 403 model_unpriced, and the 503s of counters that cannot count yet. Split from index.ts,
// which runs the hooks. wholeBudgetRefusal is the 402 of a request above every candidate's whole cap,
// decided without reading a counter: approvals answers it instead of asking for a useless approval.

import { formatNanos, nanosToUsd } from '../../core/catalog/nano-usd.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Services } from '../../core/spec/services.ts';
import type { TeamView } from '../../plugins/teams/types.ts';
import { budgetsOf } from './budgets.ts';
import { SEEDING_RETRY_AFTER_SECONDS } from './seeding.ts';
import {
  dearestModel,
  outputAssumption,
  outputAssumptionFields,
  outputLimitField,
  outputLimitHint,
  utcDay,
  type OutputAssumption,
  type WorstCasePlan,
} from './worst-case.ts';

/**
 * Retry-After of a refusal that only in-flight reservations caused: they settle to their real cost
 * (usually far below the worst case) when their requests end, most within seconds, so a client told to
 * wait until midnight would idle with its budget unspent (QA14, and QA15 #7 for other instances'
 * reservations). Short, as a retry is refused before any upstream call and costs nothing; a refusal
 * that persists says so again.
 */
export const IN_FLIGHT_RETRY_AFTER_SECONDS = 2;

export interface Refusal {
  provider: string;
  limitNanos: number;
  /** The counter's total: settled spend and every live reservation (those of other processes too). */
  totalNanos: number;
  worstNanos: number;
  /**
   * The worst case on the prompt's byte bound, when worstNanos is the smaller one counted by the
   * provider's tokenizer: what an identical request reserves while the budget has room for it (a prompt
   * is counted only when its bound does not fit), so what the requests in flight beside it hold.
   */
  boundNanos?: number;
  /** What this process's in-flight reservations held of the counter when it refused. */
  heldHereNanos: number;
  /** What every process's live reservations held of it, when the counters say (leases: Redis, KEYWAY_WORKERS). */
  leasedNanos: number | undefined;
}

/** What reservations in flight hold of the refused counter: every process's where the counters say, else this process's. */
function inFlightNanos(refusal: Refusal): number {
  return refusal.leasedNanos ?? refusal.heldHereNanos;
}

/** The refusal would have fit without the reservations in flight: they, not spend, filled the budget. */
function causedByInFlight(refusal: Refusal): boolean {
  const held = inFlightNanos(refusal);
  return held > 0 && refusal.totalNanos - held + refusal.worstNanos <= refusal.limitNanos;
}

/** The worst case alone exceeds the cap: no settlement or reset makes room for the request as sent. */
function aboveWholeBudget(refusal: Refusal): boolean {
  return refusal.worstNanos > refusal.limitNanos;
}

/** What is left of the budget once the reservations in flight are given back: GET /v1/usage/me's `remaining_usd`. */
function leftNanos(refusal: Refusal): number {
  return Math.max(0, refusal.limitNanos - Math.max(0, refusal.totalNanos - inFlightNanos(refusal)));
}

/** Where the reservations in flight are: every instance's when the counters say, or only this one's. */
function inFlightWhere(refusal: Refusal): string {
  return refusal.leasedNanos === undefined ? 'on this gateway' : 'on the gateways sharing this budget';
}

/** The byte-bound worst case, when the refusal's worst case is the smaller tokenizer count. */
function boundAbove(refusal: Refusal): number | undefined {
  return refusal.boundNanos !== undefined && refusal.boundNanos > refusal.worstNanos ? refusal.boundNanos : undefined;
}

function describeRefusal(refusal: Refusal): string {
  const left = formatNanos(leftNanos(refusal));
  const inFlight = inFlightNanos(refusal);
  const held = inFlight > 0 ? ` after settled spend, of which requests in flight ${inFlightWhere(refusal)} hold ${formatNanos(inFlight)};` : ',';
  // Both figures, so in-flight reservations of identical requests (made at the bound) add up (QA).
  const bound = boundAbove(refusal);
  const counted =
    bound === undefined
      ? ''
      : ` with its prompt counted by ${refusal.provider}'s tokenizer, ${formatNanos(bound)} on the prompt's byte bound, which is what an identical request reserves while it is in flight`;
  return `${refusal.provider} (max_cost_per_day ${formatNanos(refusal.limitNanos)}, ${left} left${held} this request may cost up to ${formatNanos(refusal.worstNanos)}${counted})`;
}

/** What a request above the whole cap must change; empty when the output hint already says it. */
function smallerRequestHint(assumption: OutputAssumption | undefined, endpoint: RequestContext['endpoint']): string {
  if (assumption !== undefined && assumption.from !== 'request') return '';
  return ` Only a smaller worst case (a lower ${outputLimitField(endpoint)}, a shorter prompt) or a larger max_cost_per_day lets it through.`;
}

function neverFitsHead(team: TeamView, parts: string): string {
  return `Team '${team.name}' (${team.id}) cannot serve this request on ${parts}: its worst case is above the whole daily budget, so it is refused however little was spent, today or after the reset.`;
}

/** The 402 (or 403 when only unpriced models were left out) of a request no budgeted provider can take. */
export function budgetRefusal(
  services: Services,
  context: RequestContext,
  team: TeamView,
  plan: WorstCasePlan,
  refusals: Refusal[],
  unpricedCandidates: string[],
  day: ReturnType<typeof utcDay>,
): Error {
  const now = services.clock.now();
  if (refusals.length === 0) {
    // One entry per model, not per key of its provider.
    const unpriced = [...new Set(unpricedCandidates)];
    return services.errors.create('model_unpriced', {
      detail:
        `Team '${team.name}' has a daily budget on ${[...new Set(unpriced.map((entry) => entry.split('/')[0]))].join(', ')}, ` +
        `and ${unpriced.join(', ')} has no price, so its cost cannot be reserved. An operator must set a price for the model first.`,
    });
  }
  const resetAt = new Date(day.end).toISOString();
  const first = refusals[0] as Refusal;
  // Any provider that only in-flight reservations refused may take the retry: it is worth seconds, not hours.
  const inFlight = refusals.find(causedByInFlight);
  const model = dearestModel(plan, first.provider);
  const assumption = model === undefined ? undefined : outputAssumption(services.pricing, context, first.provider, model);
  const parts = refusals.map(describeRefusal).join('; ');
  // A worst case above the whole cap is refused tomorrow too: no wait helps, only a smaller request (QA14 N1).
  const neverFits = inFlight === undefined && refusals.every(aboveWholeBudget);
  const head =
    inFlight !== undefined
      ? `Team '${team.name}' (${team.id}) cannot reserve this request's worst case right now on ${parts}. Requests still in flight ${inFlightWhere(inFlight)} hold that part of the daily budget until they end: each reserved its worst case with its prompt counted from above (its bytes; a tokenizer counts it only when that does not fit), and keeps only its real cost when it settles: retry in ${IN_FLIGHT_RETRY_AFTER_SECONDS} s.`
      : neverFits
        ? neverFitsHead(team, parts)
        : `Team '${team.name}' (${team.id}) has no daily budget left for this request on ${parts}.`;
  const hint = outputLimitHint(assumption, context.endpoint, '') + (neverFits ? smallerRequestHint(assumption, context.endpoint) : '');
  const bound = boundAbove(first);
  return services.errors.create(
    'budget_exceeded',
    { detail: `${head}${hint}${neverFits ? '' : ` The budget resets at ${resetAt}.`}` },
    {
      retryAfterSeconds: neverFits ? undefined : inFlight !== undefined ? IN_FLIGHT_RETRY_AFTER_SECONDS : Math.max(1, Math.ceil((day.end - now) / 1000)),
      // The official SDKs do not retry a 402; one refused by in-flight reservations is worth retrying once
      // they settle, and one that can never fit must not be retried by any client.
      headers: inFlight !== undefined ? { 'x-should-retry': 'true' } : neverFits ? { 'x-should-retry': 'false' } : undefined,
      extra: {
        budget: 'max_cost_per_day',
        team_id: team.id,
        provider: first.provider,
        limit_usd: nanosToUsd(first.limitNanos),
        remaining_usd: nanosToUsd(leftNanos(first)),
        in_flight_usd: nanosToUsd(inFlightNanos(first)),
        worst_case_usd: nanosToUsd(first.worstNanos),
        ...(bound === undefined ? {} : { worst_case_bound_usd: nanosToUsd(bound) }),
        ...outputAssumptionFields(assumption),
        reset_at: resetAt,
        budgets: refusals.map((refusal) => ({ provider: refusal.provider, limit_usd: nanosToUsd(refusal.limitNanos), reset_at: resetAt })),
      },
    },
  );
}

/**
 * The 402 of a request whose worst case on the plan is above the whole `max_cost_per_day` of every
 * candidate's provider, or undefined when any candidate may still be served (a provider without a
 * budget, or one whose cap holds the worst case). Reads no counter: no spend, settlement or reset
 * changes the answer. Approvals answers it before asking an admin for an approval the budget would
 * refuse anyway (QA: an approval was issued, approved, and its re-send refused 402).
 */
export function wholeBudgetRefusal(services: Services, context: RequestContext, team: TeamView, plan: WorstCasePlan): Error | undefined {
  const limits = budgetsOf(team).limits;
  if (limits.size === 0 || plan.length === 0) return undefined;
  for (const entry of plan) {
    const limit = limits.get(entry.provider);
    if (limit === undefined || entry.nanos === undefined || entry.nanos <= limit) return undefined;
  }
  const first = plan[0] as WorstCasePlan[number];
  const firstLimit = limits.get(first.provider) as number;
  const resetAt = new Date(utcDay(services.clock.now()).end).toISOString();
  const model = dearestModel(plan, first.provider);
  const assumption = model === undefined ? undefined : outputAssumption(services.pricing, context, first.provider, model);
  const parts = plan
    .map(
      (entry) =>
        `${entry.provider} (max_cost_per_day ${formatNanos(limits.get(entry.provider) as number)}, this request may cost up to ${formatNanos(entry.nanos as number)})`,
    )
    .join('; ');
  const detail =
    `${neverFitsHead(team, parts)} No approval is asked for, as an approved request would be refused all the same.` +
    outputLimitHint(assumption, context.endpoint, '') +
    smallerRequestHint(assumption, context.endpoint);
  return services.errors.create(
    'budget_exceeded',
    { detail },
    {
      headers: { 'x-should-retry': 'false' },
      extra: {
        budget: 'max_cost_per_day',
        team_id: team.id,
        provider: first.provider,
        limit_usd: nanosToUsd(firstLimit),
        worst_case_usd: nanosToUsd(first.nanos as number),
        ...outputAssumptionFields(assumption),
        reset_at: resetAt,
        budgets: plan.map((entry) => ({ provider: entry.provider, limit_usd: nanosToUsd(limits.get(entry.provider) as number), reset_at: resetAt })),
      },
    },
  );
}

/**
 * The counters (Redis, with several instances) cannot answer: a budgeted request fails closed, since
 * no one could count what it spends.
 */
export function countersUnavailableError(services: Services, team: Pick<TeamView, 'id' | 'name'>, cause: unknown): Error {
  services.logger.error(
    { teamId: team.id, error: cause instanceof Error ? cause.message : String(cause) },
    'budget counters unavailable: refusing a budgeted request',
  );
  return services.errors.create(
    'no_provider_available',
    {
      detail:
        `Team '${team.name}' (${team.id}) has a daily budget, and the shared budget counters (${services.counters.name}) are unreachable, so this request's cost cannot be reserved. ` +
        'Requests of teams with a budget are refused until they return; other requests are served. Retry shortly.',
    },
    { retryAfterSeconds: 5 },
  );
}

/**
 * The team's counters do not hold today's spend yet (they lost their data, and the process reading it
 * back from the store has not finished): refused as the outage above is, but worth a retry in a second.
 */
export function budgetsNotSeededError(services: Services, team: Pick<TeamView, 'id' | 'name'>, providers: string[]): Error {
  services.logger.warn({ teamId: team.id, providers }, 'budget counters are being seeded from the usage rows: refusing a budgeted request');
  return services.errors.create(
    'no_provider_available',
    {
      detail:
        `Team '${team.name}' (${team.id}) has a daily budget on ${providers.join(', ')}, and the shared budget counters (${services.counters.name}) do not hold today's spend yet: ` +
        `it is being read back from the usage rows (the counters lost their data), so this request's cost cannot be reserved. Retry in ${SEEDING_RETRY_AFTER_SECONDS} s.`,
    },
    { retryAfterSeconds: SEEDING_RETRY_AFTER_SECONDS, headers: { 'x-should-retry': 'true' } },
  );
}
