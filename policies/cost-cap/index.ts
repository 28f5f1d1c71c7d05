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
import type { Reservation } from '../../core/spec/counters.ts';
import { teamOf, type TeamView } from '../../plugins/teams/types.ts';
import { toNanosCeil } from '../../core/catalog/nano-usd.ts';
import { budgetsOf, counterKey } from './budgets.ts';
import { createInFlightTally, createLeaseKeeper, type HeldReservation } from './leases.ts';
import { budgetRefusal, budgetsNotSeededError, countersUnavailableError, type Refusal } from './refusal.ts';
import { CountersUnavailable, createSeeding } from './seeding.ts';
import { plannedNanos, refineWorstCasePlan, utcDay, worstCasePlan, type WorstCasePlan } from './worst-case.ts';

export { IN_FLIGHT_RETRY_AFTER_SECONDS } from './refusal.ts';
export { budgetKey, SEEDING_RETRY_AFTER_SECONDS, seededMarkerKey, seedingClaimKey } from './seeding.ts';
export type { HeldReservation } from './leases.ts';

export const COST_CAP_PLUGIN = 'cost-cap';

/** Counters outlive their day by this much, so a request that settles just after midnight still finds its own. */
const EXPIRY_MARGIN_MS = 6 * 60 * 60 * 1000;

export interface CostCapState {
  held: HeldReservation[];
}

/** One reservation a request asks for at `call`. */
interface Wanted {
  provider: string;
  key: string;
  nanos: number;
  limit: number;
  leaseId: string | undefined;
  entry: WorstCasePlan[number];
}

/** What one round of reservations answered: the refusals, and the entries whose counters are not seeded. */
interface Attempt {
  refusals: Refusal[];
  unseeded: WorstCasePlan | undefined;
}

/**
 * Seedings a request goes through before it is refused for now: the second covers another process's
 * claim that was released or lapsed without the counter being seeded (its read failed, or it died),
 * when this process claims and reads itself.
 */
const SEED_ROUNDS = 2;

/**
 * Leaves out the candidates of budgeted providers that cannot be served: the provider's reservation
 * was refused, its counter is not seeded yet, or the model is unpriced. Returns the unpriced ones
 * (`provider/model`). The candidate list is replaced only when one is left out.
 */
function dropUnserved(
  context: RequestContext,
  plan: WorstCasePlan,
  limits: Map<string, number>,
  refusals: Refusal[],
  unseeded: string[] | undefined,
): string[] {
  const unpriced: string[] = [];
  const candidates = context.candidates;
  let kept: RequestContext['candidates'] | undefined;
  for (let index = 0; index < candidates.length; index++) {
    const candidate = candidates[index] as (typeof candidates)[number];
    let served = true;
    if (limits.has(candidate.provider)) {
      if (refusals.some((refusal) => refusal.provider === candidate.provider) || unseeded?.includes(candidate.provider) === true) served = false;
      else if (plannedNanos(plan, candidate.provider, candidate.model) === undefined) {
        unpriced.push(`${candidate.provider}/${candidate.model}`);
        served = false;
      }
    }
    if (!served) kept ??= candidates.slice(0, index);
    else kept?.push(candidate);
  }
  if (kept !== undefined) context.candidates = kept;
  return unpriced;
}

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

  function call(context: RequestContext): void | Promise<void> {
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
    const reserveOptions = seeding.reserveOptions();
    const state: CostCapState = { held: [] };
    context.state.set(COST_CAP_PLUGIN, state);
    /** Budgeted providers whose counters were still not seeded after the seeding: refused for now. */
    let unseededProviders: string[] | undefined;
    /**
     * Reserves each budgeted provider's worst case in `entries`; answers the refusals and the entries
     * whose counters are not seeded, or a promise of them when the counters are remote. A partial
     * failure of the counters gives back what it got.
     */
    const reserveEntries = (entries: WorstCasePlan): Attempt | Promise<Attempt> => {
      const counters = services.counters;
      const leasing = leases.enabled();
      const wanted: Wanted[] = [];
      const results: Array<Reservation | Promise<Reservation>> = [];
      let waiting = false;
      for (const entry of entries) {
        const provider = entry.provider;
        const limit = limits.get(provider);
        if (limit === undefined || entry.nanos === undefined) continue;
        // Each counter's key is one string for the day: reserved, held, and given back on failure under it.
        const key = counterKey(team, budgets, provider, day.date);
        const leaseId = leasing ? crypto.randomUUID() : undefined;
        const result =
          leaseId !== undefined && counters.reserveLease !== undefined
            ? counters.reserveLease(key, entry.nanos, limit, expiresAt, { id: leaseId, until: services.clock.now() + leaseMs }, reserveOptions)
            : counters.reserve(key, entry.nanos, limit, expiresAt, reserveOptions);
        if (result instanceof Promise) waiting = true;
        wanted.push({ provider, key, nanos: entry.nanos, limit, leaseId, entry });
        results.push(result);
      }
      const collect = (settled: Reservation[]): Attempt => {
        const attempt: Attempt = { refusals: [], unseeded: undefined };
        for (let index = 0; index < wanted.length; index++) {
          const { provider, key, nanos, limit, leaseId, entry } = wanted[index] as Wanted;
          const result = settled[index] as Reservation;
          if (result.ok) {
            const held: HeldReservation = { key, provider, nanos, expiresAt, leaseId };
            state.held.push(held);
            leases.hold(held);
            inFlight.add(key, nanos);
          } else if (result.unseeded === true) {
            (attempt.unseeded ??= []).push(entry);
          } else {
            attempt.refusals.push({
              provider,
              limitNanos: limit,
              totalNanos: result.total,
              worstNanos: nanos,
              heldHereNanos: inFlight.of(key),
              leasedNanos: result.leased,
            });
          }
        }
        return attempt;
      };
      if (!waiting) return collect(results as Reservation[]);
      return Promise.all(results).then(collect, (error: unknown) => {
        // Any reservation this request did get is given back, so a partial failure books nothing.
        for (const [index, result] of results.entries()) {
          if (!(result instanceof Promise)) continue;
          const { key, nanos, leaseId } = wanted[index] as Wanted;
          result
            .then((granted) => {
              if (!granted.ok) return;
              if (leaseId !== undefined) return counters.settleLease?.(key, leaseId, 0, expiresAt);
              return counters.adjust(key, -nanos, expiresAt);
            })
            .catch(() => undefined);
        }
        throw countersUnavailable(team, error);
      });
    };
    const conclude = (finalPlan: WorstCasePlan, refusals: Refusal[]): void => {
      const unpriced = dropUnserved(context, finalPlan, limits, refusals, unseededProviders);
      if (context.candidates.length > 0) return;
      // Not seeded yet is worth a retry in a second; a refusal of spend on another provider is not.
      if (unseededProviders !== undefined) throw budgetsNotSeededError(services, team, unseededProviders);
      throw budgetRefusal(services, context, team, finalPlan, refusals, unpriced, day);
    };
    /**
     * The byte bound refused some provider: its prompt is counted again with the provider's own
     * tokenizer (exact for the model, never above the bound), and a provider whose smaller worst case
     * may now fit tries once more. A provider without a tokenizer keeps its refusal.
     */
    const retryCounted = async (refusals: Refusal[]): Promise<void> => {
      const refined = await refineWorstCasePlan(services.pricing, context);
      const retry: WorstCasePlan = [];
      const kept: Refusal[] = [];
      for (const refusal of refusals) {
        const entry = refined.find((candidate) => candidate.provider === refusal.provider);
        if (entry?.nanos !== undefined && entry.nanos < refusal.worstNanos) retry.push(entry);
        else kept.push(refusal);
      }
      const retried = retry.length === 0 ? undefined : await reserveEntries(retry);
      // A refusal of the counted worst case keeps the bound it was first refused at: what identical requests in flight reserved.
      for (const refusal of retried?.refusals ?? []) refusal.boundNanos = refusals.find((first) => first.provider === refusal.provider)?.worstNanos;
      // Its counter lost its data in the moment between: refused for now, as any unseeded one.
      for (const entry of retried?.unseeded ?? []) (unseededProviders ??= []).push(entry.provider);
      conclude(refined, retried === undefined ? kept : [...kept, ...retried.refusals]);
    };
    const afterAttempt = (attempt: Attempt): void | Promise<void> => {
      if (attempt.unseeded !== undefined) return seedAndRetry(attempt);
      return attempt.refusals.length === 0 ? conclude(plan, attempt.refusals) : retryCounted(attempt.refusals);
    };
    /**
     * Some counters do not hold today's spend (they start empty, or Redis lost them): the day is seeded
     * from the store (or another process's seeding awaited), then those providers reserve again. One
     * still not seeded after that is refused for now, never reserved against a counter from zero.
     */
    const seedAndRetry = async (first: Attempt): Promise<void> => {
      let refusals = first.refusals;
      let pending = first.unseeded;
      for (let round = 0; round < SEED_ROUNDS && pending !== undefined; round++) {
        const over = await seeding.ensure(team, day, expiresAt, limits.keys()).catch((error: unknown) => {
          throw seedingFailure(team, error);
        });
        // Another process still reads: waiting longer would hold the request up for a slow database.
        if (!over) break;
        const again = await reserveEntries(pending);
        refusals = again.refusals.length === 0 ? refusals : [...refusals, ...again.refusals];
        pending = again.unseeded;
      }
      if (pending !== undefined) unseededProviders = pending.map((entry) => entry.provider);
      return refusals.length === 0 ? conclude(plan, refusals) : retryCounted(refusals);
    };
    const reserve = (): void | Promise<void> => {
      const attempt = reserveEntries(plan);
      return attempt instanceof Promise ? attempt.then(afterAttempt) : afterAttempt(attempt);
    };
    if (before !== undefined) return before.then(reserve);
    return reserve();
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
    const budgets = budgetsOf(team);
    const now = services.clock.now();
    const day = utcDay(now);
    const expiresAt = day.end + EXPIRY_MARGIN_MS;
    const key = counterKey(team, budgets, served.provider, day.date);
    const spent = toNanosCeil(outcome.costUsd);
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
          if (!(await seeding.ensure(team, day, expiresAt, [served.provider, ...budgets.limits.keys()]))) break;
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
    for (const held of heldReservations) {
      inFlight.release(held.key, held.nanos);
      // The served provider's reservation becomes the real cost as booked (a cancelled stream's is the
      // core's estimate); a failure before any usage, and every provider not served, gives it all back.
      const settled = context.served?.provider === held.provider && outcome.costUsd !== undefined ? toNanosCeil(outcome.costUsd) : 0;
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
