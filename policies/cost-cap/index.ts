// cost-cap: a team's `max_cost_per_day` per provider, exact under concurrency. At `call` (the plan is
// final) each budgeted provider among the candidates reserves the request's worst case on an atomic
// counter; a provider whose reservation does not fit is dropped from the plan, and a request left
// with none is refused 402 `budget_exceeded`. At `account` (exactly once per request) the served
// provider's reservation is settled to the real cost and every other one is released. A reservation
// asks for a counter seeded with the day's booked spend (seeding.ts), so counters that start empty or
// lose their data are filled from the store before anything is reserved on them. See README.md and
// docs/policies.md.

import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { teamOf, type TeamView } from '../../plugins/teams/types.ts';
import { toNanosCeil } from '../../core/catalog/nano-usd.ts';
import type { Reservation } from '../../core/spec/counters.ts';
import { BudgetCall, type CostCapShared, type CostCapState, SEED_ROUNDS } from './budget-call.ts';
import { budgetsOf, counterKey } from './budgets.ts';
import { createInFlightTally, createLeaseKeeper } from './leases.ts';
import { countersUnavailableError } from './refusal.ts';
import { CountersUnavailable, createSeeding } from './seeding.ts';
import { utcDay, worstCasePlan } from './worst-case.ts';

export { IN_FLIGHT_RETRY_AFTER_SECONDS } from './refusal.ts';
export { budgetKey, SEEDING_RETRY_AFTER_SECONDS, seededMarkerKey, seedingClaimKey } from './seeding.ts';
export type { HeldReservation } from './leases.ts';
export type { CostCapState } from './budget-call.ts';

export const COST_CAP_PLUGIN = 'cost-cap';

/** Counters outlive their day by this much, so a request that settles just after midnight still finds its own. */
const EXPIRY_MARGIN_MS = 6 * 60 * 60 * 1000;

export interface CostCapOptions {
  /**
   * How long a reservation's lease lasts without renewal: KEYWAY_FIRST_BYTE_TIMEOUT_MS + 5 s, so a
   * crashed process's reservations are released within that (PRODUCT.md, "Governance details").
   */
  leaseMs?: number;
}

const DEFAULT_LEASE_MS = 65_000;

export function createCostCap(services: Services, options: CostCapOptions = {}) {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const leases = createLeaseKeeper(services, leaseMs);
  const inFlight = createInFlightTally();
  const seeding = createSeeding(services);
  /** The day the in-flight tally's counters are for: past days' settled entries are dropped when it changes. */
  let tallyDate = '';

  /** A failure of the seeding as the request's answer: an unreachable counters store is the outage's 503. */
  function seedingFailure(team: Pick<TeamView, 'id' | 'name'>, error: unknown): Error {
    if (error instanceof CountersUnavailable) return countersUnavailable(team, error.cause);
    return error instanceof Error ? error : new Error(String(error));
  }

  /** Counters without `seed` check their marker again on the next request after a failure (a Redis that lost its data). */
  function countersUnavailable(team: Pick<TeamView, 'id' | 'name'>, cause: unknown): Error {
    seeding.forget();
    return countersUnavailableError(services, team, cause);
  }

  const shared: CostCapShared = { services, leases, inFlight, seeding, leaseMs, seedingFailure, countersUnavailable };

  function call(context: RequestContext): void | Promise<void> {
    // Counting tokens is free and costs nothing to reserve: a worst case of the key's whole output
    // allowance refused a member's first count under a small budget (QA20).
    if (context.endpoint === 'count_tokens') return;
    const team = teamOf(services.snapshot, context);
    if (team === undefined) return;
    const budgets = budgetsOf(team);
    const limits = budgets.limits;
    if (limits.size === 0) return;
    const plan = worstCasePlan(services.pricing, context);
    let budgeted = false;
    for (const entry of plan) if (limits.has(entry.provider)) budgeted = true;
    if (!budgeted) return;
    const now = services.clock.now();
    const day = utcDay(now);
    if (tallyDate !== day.date) {
      tallyDate = day.date;
      inFlight.forgetSettled();
    }
    const expiresAt = day.end + EXPIRY_MARGIN_MS;
    const before = seeding.before(team, budgets.unit, day, expiresAt)?.catch((error: unknown) => {
      throw seedingFailure(team, error);
    });
    const state: CostCapState = { held: [] };
    context.state.set(COST_CAP_PLUGIN, state);
    const reservations = new BudgetCall(shared, context, team, budgets, plan, day, expiresAt, seeding.reserveOptions(), state);
    if (before !== undefined) return before.then(() => reservations.start());
    return reservations.start();
  }

  /**
   * A team's spend on a provider it has no budget for is counted all the same: a budget set later in
   * the day (or set again after being removed) starts from what the team already spent today, not from
   * zero. Only on a seeded counter (the seeding reads the store, which holds every row counted before
   * it), so no row is counted twice.
   */
  function countUnreserved(context: RequestContext, outcome: RequestOutcome): void | Promise<void> {
    const served = context.served;
    if (served === undefined || outcome.costUsd === undefined || !(outcome.costUsd > 0)) return;
    const team = teamOf(services.snapshot, context);
    if (team === undefined) return;
    return countToday(team, budgetsOf(team), served.provider, toNanosCeil(outcome.costUsd));
  }

  /** Adds spend that no reservation of today holds to today's counter of the team and provider. */
  function countToday(team: TeamView, budgets: ReturnType<typeof budgetsOf>, provider: string, spent: number): void | Promise<void> {
    const now = services.clock.now();
    const day = utcDay(now);
    const expiresAt = day.end + EXPIRY_MARGIN_MS;
    const key = counterKey(team, budgets, provider, day.date);
    const counters = services.counters;
    const reserveOptions = seeding.reserveOptions();
    let counted: void | Promise<void>;
    if (reserveOptions === undefined) {
      const count = (): void | Promise<void> => {
        const result = counters.adjust(key, spent, expiresAt);
        if (result instanceof Promise) return result.then(() => undefined);
      };
      const before = seeding.before(team, budgets.unit, day, expiresAt);
      counted = before === undefined ? count() : before.then(count);
    } else {
      // A reservation without a limit: the count lands only on a seeded counter, atomically.
      const count = () => counters.reserve(key, spent, Number.MAX_SAFE_INTEGER, expiresAt, reserveOptions);
      const first = count();
      const seeded = async (result: Reservation): Promise<void> => {
        for (let round = 0; round < SEED_ROUNDS && result.unseeded === true; round++) {
          if (!(await seeding.ensure(team, day, expiresAt, [provider, ...budgets.limits.keys()]))) break;
          result = await count();
        }
        // Still not seeded: the row is in the store for whichever seeding comes next.
      };
      counted = first instanceof Promise ? first.then(seeded) : first.unseeded === true ? seeded(first) : undefined;
    }
    // The counters away (Redis down): the request was answered; this spend is missing from a budget set
    // later today, the one case where a later budget starts a little low.
    return counted instanceof Promise ? counted.catch(() => undefined) : counted;
  }

  function account(context: RequestContext, outcome: RequestOutcome): void | Promise<void> {
    const state = context.state.get(COST_CAP_PLUGIN) as CostCapState | undefined;
    if (state === undefined) return countUnreserved(context, outcome);
    if (state.held.length === 0) return;
    // Settled once: the state stays, empty, so a second call books nothing.
    const heldReservations = state.held;
    state.held = [];
    const pending: Promise<unknown>[] = [];
    const today = utcDay(services.clock.now());
    for (const held of heldReservations) {
      inFlight.release(held.key, held.nanos);
      // The served provider's reservation becomes the real cost as booked (a cancelled stream's is the
      // core's estimate); a failure before any usage, and every provider not served, gives it all back.
      let settled = context.served?.provider === held.provider && outcome.costUsd !== undefined ? toNanosCeil(outcome.costUsd) : 0;
      if (settled > 0 && held.date !== today.date) {
        // Reserved before midnight, ended after it: the usage row is booked on the day the request
        // ends, so its cost counts on that day's counter, the one the day's refusals, GET
        // /v1/usage/me and the export all read; the old day's reservation is given back whole.
        const team = teamOf(services.snapshot, context);
        if (team !== undefined) {
          const counted = countToday(team, budgetsOf(team), held.provider, settled);
          if (counted instanceof Promise) pending.push(counted);
          settled = 0;
        }
      }
      const delta = settled - held.nanos;
      if (held.leaseId !== undefined) {
        pending.push(leases.settle(held, settled));
        continue;
      }
      if (delta === 0) continue;
      const result = services.counters.adjust(held.key, delta, held.expiresAt);
      if (result instanceof Promise) {
        // A settlement the counters cannot take leaves the worst case booked (never an undercount).
        pending.push(
          result.catch((error: unknown) =>
            services.logger.warn(
              { provider: held.provider, error: error instanceof Error ? error.message : String(error) },
              'budget settlement failed: the reservation stays at its worst case until the counter expires',
            ),
          ),
        );
      }
    }
    if (pending.length > 0) return Promise.all(pending).then(() => undefined);
  }

  return { call, account };
}

export const costCapPolicyPlugin = definePlugin({
  name: COST_CAP_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  description: "A team's max_cost_per_day per provider, reserved at worst case before the call and settled after it",
  dependencies: ['teams', 'approvals'],
  setup: ({ services, env }) => {
    const firstByte = Number(env.KEYWAY_FIRST_BYTE_TIMEOUT_MS);
    const leaseMs = (Number.isInteger(firstByte) && firstByte > 0 ? firstByte : 60_000) + 5_000;
    return { hooks: createCostCap(services, { leaseMs }) };
  },
});

export default costCapPolicyPlugin;
