// The answers cost-cap refuses with: 402 budget_exceeded (with a Retry-After of seconds when only
// reservations in flight filled the budget, until midnight when spend did, none when the request can
// never fit), 403 model_unpriced, and the 503s of counters that cannot count yet. Split from index.ts,
// which runs the hooks.

import { formatNanos, nanosToUsd } from '../../core/catalog/nano-usd.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Services } from '../../core/spec/services.ts';
import type { TeamView } from '../../plugins/teams/types.ts';
import { SEEDING_RETRY_AFTER_SECONDS } from './seeding.ts';
import { dearestModel, outputAssumption, outputAssumptionFields, outputLimitHint, type utcDay, type WorstCasePlan } from './worst-case.ts';

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

function describeRefusal(refusal: Refusal): string {
  const left = formatNanos(leftNanos(refusal));
  const inFlight = inFlightNanos(refusal);
  const held = inFlight > 0 ? ` after settled spend, of which requests in flight ${inFlightWhere(refusal)} hold ${formatNanos(inFlight)};` : ',';
  return `${refusal.provider} (max_cost_per_day ${formatNanos(refusal.limitNanos)}, ${left} left${held} this request may cost up to ${formatNanos(refusal.worstNanos)})`;
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
  const assumption = model === undefined ? undefined : outputAssumption(services.pricing, context.request, first.provider, model);
  const parts = refusals.map(describeRefusal).join('; ');
  // A worst case above the whole cap is refused tomorrow too: no wait helps, only a smaller request (QA14 N1).
  const neverFits = inFlight === undefined && refusals.every(aboveWholeBudget);
  const head =
    inFlight !== undefined
      ? `Team '${team.name}' (${team.id}) cannot reserve this request's worst case right now on ${parts}. Requests still in flight ${inFlightWhere(inFlight)} hold that part of the daily budget until they end, when each keeps only its real cost: retry in ${IN_FLIGHT_RETRY_AFTER_SECONDS} s.`
      : neverFits
        ? `Team '${team.name}' (${team.id}) cannot serve this request on ${parts}: its worst case is above the whole daily budget, so it is refused however little was spent, today or after the reset.`
        : `Team '${team.name}' (${team.id}) has no daily budget left for this request on ${parts}.`;
  return services.errors.create(
    'budget_exceeded',
    { detail: `${head}${outputLimitHint(assumption, context.endpoint, '')}${neverFits ? '' : ` The budget resets at ${resetAt}.`}` },
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
        ...outputAssumptionFields(assumption),
        reset_at: resetAt,
        budgets: refusals.map((refusal) => ({ provider: refusal.provider, limit_usd: nanosToUsd(refusal.limitNanos), reset_at: resetAt })),
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
