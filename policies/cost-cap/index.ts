// cost-cap: a team's `max_cost_per_day` per provider, exact under concurrency. At `call` (the plan is
// final) each budgeted provider among the candidates reserves the request's worst case on an atomic
// counter; a provider whose reservation does not fit is dropped from the plan, and a request left
// with none is refused 402 `budget_exceeded`. At `account` (exactly once per request) the served
// provider's reservation is settled to the real cost and every other one is released. See
// README.md and docs/policies.md.

import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import type { Reservation } from '../../core/spec/counters.ts';
import { teamOf, type TeamView } from '../../plugins/teams/types.ts';
import { budgetLimitNanos, formatNanos, nanosToUsd, toNanosCeil } from '../../core/catalog/nano-usd.ts';
import {
  dearestModel,
  outputAssumption,
  outputAssumptionFields,
  outputLimitHint,
  plannedNanos,
  refineWorstCasePlan,
  utcDay,
  worstCasePlan,
  type WorstCasePlan,
} from './worst-case.ts';

export const COST_CAP_PLUGIN = 'cost-cap';

/** Counters outlive their day by this much, so a request that settles just after midnight still finds its own. */
const EXPIRY_MARGIN_MS = 6 * 60 * 60 * 1000;

/**
 * Retry-After of a refusal that only this process's in-flight reservations caused: they settle to
 * their real cost (usually far below the worst case) when their requests end, most within seconds, so
 * a client told to wait until midnight would idle with its budget unspent (QA14). Short, as a retry is
 * refused before any upstream call and costs nothing; a refusal that persists says so again.
 */
export const IN_FLIGHT_RETRY_AFTER_SECONDS = 2;

/** One reservation a request holds until `account`. */
export interface HeldReservation {
  key: string;
  provider: string;
  nanos: number;
  expiresAt: number;
  /** Set when the counters hold reservations as leases (shared counters): settled by lease. */
  leaseId?: string;
}

export interface CostCapState {
  held: HeldReservation[];
}

/**
 * The counter of a team's spend on one provider on one UTC day, in nano-dollars. `v2`: until QA14 the
 * counters held micro-dollars under `budget:…`; a new name makes a running deployment (Redis) seed
 * today's spend from the store in the new unit instead of adding nano-dollars to micro-dollars.
 */
export function budgetKey(accountId: string, teamId: string, provider: string, date: string): string {
  return `budget:v2:${accountId}:${teamId}:${provider}:${date}`;
}

/** The marker that today's booked spend was added to a team's counters (claimed once per counters store). */
export function seededMarkerKey(accountId: string, teamId: string, date: string): string {
  return `budget-seeded:v2:${accountId}:${teamId}:${date}`;
}

interface Refusal {
  provider: string;
  limitNanos: number;
  /** The counter's total: settled spend and every live reservation (those of other processes too). */
  totalNanos: number;
  worstNanos: number;
  /** What this process's in-flight reservations held of the counter when it refused. */
  heldHereNanos: number;
}

/** The refusal would have fit without this process's in-flight reservations: they, not spend, filled the budget. */
function causedByInFlight(refusal: Refusal): boolean {
  return refusal.heldHereNanos > 0 && refusal.totalNanos - refusal.heldHereNanos + refusal.worstNanos <= refusal.limitNanos;
}

/** The worst case alone exceeds the cap: no settlement or reset makes room for the request as sent. */
function aboveWholeBudget(refusal: Refusal): boolean {
  return refusal.worstNanos > refusal.limitNanos;
}

/** What is left of the budget once this process's in-flight reservations are given back: GET /v1/usage/me's `remaining_usd`. */
function leftNanos(refusal: Refusal): number {
  return Math.max(0, refusal.limitNanos - Math.max(0, refusal.totalNanos - refusal.heldHereNanos));
}

function describeRefusal(refusal: Refusal): string {
  const left = formatNanos(leftNanos(refusal));
  const held =
    refusal.heldHereNanos > 0 ? ` after settled spend, of which requests in flight on this gateway hold ${formatNanos(refusal.heldHereNanos)};` : ',';
  return `${refusal.provider} (max_cost_per_day ${formatNanos(refusal.limitNanos)}, ${left} left${held} this request may cost up to ${formatNanos(refusal.worstNanos)})`;
}

/**
 * The nano-dollars this process's live reservations hold, per counter key: added when a reservation is
 * granted, taken off when its request settles, so a refusal can tell spend from reservations that will
 * clear in seconds. One number per team, provider and day, updated in place: nothing is allocated per
 * request. Only this process's reservations are known: with shared counters (Redis, or the primary's
 * under KEYWAY_WORKERS) other processes' count as spent (docs/policies.md, "Retry-After: seconds when only in-flight reservations refused").
 */
function createInFlightTally() {
  const held = new Map<string, number>();
  return {
    add(key: string, nanos: number): void {
      held.set(key, (held.get(key) ?? 0) + nanos);
    },
    release(key: string, nanos: number): void {
      const current = held.get(key);
      if (current !== undefined) held.set(key, Math.max(0, current - nanos));
    },
    of(key: string): number {
      return held.get(key) ?? 0;
    },
    /** Forgets the counters nothing is held on any more: called when the day changes, as their keys name past days. */
    forgetSettled(): void {
      for (const [key, nanos] of held) if (nanos === 0) held.delete(key);
    },
  };
}

/** A team's budgets as the request path reads them: built once per team view, its counter keys once per day. */
interface TeamBudgets {
  /** Each budgeted provider's `max_cost_per_day` in nano-dollars. */
  limits: Map<string, number>;
  /** The team's seeding unit (`account:team`), one string for every request. */
  unit: string;
  /** The day `keys` are for, and each provider's counter key on it: one string per day, not one per request. */
  date: string;
  keys: Map<string, string>;
}

/** Per team view (a new one comes with every snapshot): built once, read on every request. */
const budgetsByTeam = new WeakMap<TeamView, TeamBudgets>();

function budgetsOf(team: TeamView): TeamBudgets {
  const cached = budgetsByTeam.get(team);
  if (cached !== undefined) return cached;
  const limits = new Map<string, number>();
  for (const [provider, permission] of Object.entries(team.permissions.providers ?? {})) {
    const cap = permission?.max_cost_per_day;
    if (typeof cap === 'number' && Number.isFinite(cap) && cap >= 0) limits.set(provider, budgetLimitNanos(cap));
  }
  const budgets: TeamBudgets = { limits, unit: `${team.accountId}:${team.id}`, date: '', keys: new Map() };
  budgetsByTeam.set(team, budgets);
  return budgets;
}

function counterKey(team: TeamView, budgets: TeamBudgets, provider: string, date: string): string {
  if (budgets.date !== date) {
    budgets.keys.clear();
    budgets.date = date;
  }
  let key = budgets.keys.get(provider);
  if (key === undefined) {
    key = budgetKey(team.accountId, team.id, provider, date);
    budgets.keys.set(provider, key);
  }
  return key;
}

/** One reservation a request asks for at `call`. */
interface Wanted {
  provider: string;
  key: string;
  nanos: number;
  limit: number;
  leaseId: string | undefined;
}

/**
 * Renews the leases of this process's live reservations, all of them in one pipelined batch every
 * few seconds, while their requests live. A crashed process renews nothing, so its reservations
 * lapse within `leaseMs`. Only counters that offer leases (Redis, and the primary's counters under
 * KEYWAY_WORKERS) use this; a lone process's in-memory counters die with it.
 */
function createLeaseKeeper(services: Services, leaseMs: number) {
  // Read when first used: services.counters is bound once the gateway runs, after plugin setup.
  const enabled = (): boolean => {
    const counters = services.counters;
    return counters.reserveLease !== undefined && counters.settleLease !== undefined && counters.renewLeases !== undefined;
  };
  const live = new Map<string, HeldReservation>();
  /** Settlements the counters could not take (Redis away): retried every tick, their leases kept alive meanwhile. */
  const unsettled = new Map<string, { held: HeldReservation; spent: number }>();
  let timer: ReturnType<typeof setInterval> | undefined;
  const settle = (held: HeldReservation, spent: number): Promise<unknown> =>
    Promise.resolve(services.counters.settleLease?.(held.key, held.leaseId as string, spent, held.expiresAt)).then(() => {
      live.delete(held.leaseId as string);
      unsettled.delete(held.leaseId as string);
    });
  const renew = (): void => {
    for (const { held, spent } of unsettled.values()) settle(held, spent).catch(() => undefined);
    if (live.size === 0) {
      clearInterval(timer);
      timer = undefined;
      return;
    }
    const batch = [...live.values()].map((held) => ({ key: held.key, id: held.leaseId as string }));
    Promise.resolve(services.counters.renewLeases?.(batch, services.clock.now() + leaseMs)).catch((error: unknown) =>
      services.logger.warn(
        { leases: batch.length, error: error instanceof Error ? error.message : String(error) },
        'could not renew budget reservation leases',
      ),
    );
  };
  return {
    enabled,
    hold(held: HeldReservation): void {
      if (held.leaseId === undefined) return;
      live.set(held.leaseId, held);
      if (timer === undefined) {
        // A third of the lease: two renewals may fail before a live request's reservation lapses.
        timer = setInterval(renew, Math.max(1_000, Math.floor(leaseMs / 3)));
        timer.unref?.();
      }
    },
    /**
     * Settles a lease; if the counters cannot take it, it is retried every tick (bounded), so the real
     * cost is booked once Redis is back, whether or not the lease lapsed meanwhile.
     */
    settle(held: HeldReservation, spent: number): Promise<unknown> {
      return settle(held, spent).catch((error: unknown) => {
        if (unsettled.size < MAX_UNSETTLED) unsettled.set(held.leaseId as string, { held, spent });
        else live.delete(held.leaseId as string);
        services.logger.warn(
          { provider: held.provider, error: error instanceof Error ? error.message : String(error) },
          'budget settlement failed: retried until the counters take it',
        );
      });
    },
  };
}

/**
 * Leaves out the candidates of budgeted providers that cannot be served: the provider's reservation
 * was refused, or the model is unpriced. Returns the unpriced ones (`provider/model`). The candidate
 * list is replaced only when one is left out.
 */
function dropUnserved(context: RequestContext, plan: WorstCasePlan, limits: Map<string, number>, refusals: Refusal[]): string[] {
  const unpriced: string[] = [];
  const candidates = context.candidates;
  let kept: RequestContext['candidates'] | undefined;
  for (let index = 0; index < candidates.length; index++) {
    const candidate = candidates[index] as (typeof candidates)[number];
    let served = true;
    if (limits.has(candidate.provider)) {
      if (refusals.some((refusal) => refusal.provider === candidate.provider)) served = false;
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

/** A counters call that failed (not a refusal): tells seeding apart from a store error. */
class CountersUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super('counters unavailable');
  }
}

export interface CostCapOptions {
  /**
   * How long a reservation's lease lasts without renewal: KEYWAY_FIRST_BYTE_TIMEOUT_MS + 5 s, so a
   * crashed process's reservations are released within that (PRODUCT.md, "Governance details").
   */
  leaseMs?: number;
}

const DEFAULT_LEASE_MS = 65_000;
/** Settlements kept for retry while the counters are away; past this, a lease simply lapses and its cost goes unbooked. */
const MAX_UNSETTLED = 10_000;

export function createCostCap(services: Services, options: CostCapOptions = {}) {
  const logger = services.logger;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const leases = createLeaseKeeper(services, leaseMs);
  const inFlight = createInFlightTally();
  /** Team-days whose counters this process has seeded from the store (cleared when the day changes). */
  let seededDate = '';
  const seeded = new Map<string, Promise<void> | true>();

  /**
   * The counters start empty when the process starts: the first budgeted request of a team on a day
   * adds what the store already booked for that team today. Once per team and day; concurrent first
   * requests wait for the same seeding, so on one instance no reservation is made before it.
   */
  function ensureSeeded(
    accountId: string,
    teamId: string,
    teamName: string,
    unit: string,
    day: ReturnType<typeof utcDay>,
    expiresAt: number,
    quiet = false,
  ): Promise<void> | undefined {
    if (seededDate !== day.date) {
      seeded.clear();
      seededDate = day.date;
      inFlight.forgetSettled();
    }
    const known = seeded.get(unit);
    if (known === true) return undefined;
    if (known !== undefined) return known;
    const seeding = seed(accountId, teamId, day, expiresAt).then(
      () => void seeded.set(unit, true),
      (error: unknown) => {
        seeded.delete(unit);
        // Counting an unbudgeted team's spend refuses nothing: its failure is not worth an error per request.
        if (quiet) throw error;
        if (error instanceof CountersUnavailable) throw countersUnavailable({ id: teamId, name: teamName }, error.cause);
        logger.error({ teamId, error: error instanceof Error ? error.message : String(error) }, 'could not read today’s spend to seed the budget');
        throw services.errors.create('not_ready', {
          detail: 'The team’s budget cannot be checked right now (today’s spend could not be read). Retry shortly.',
        });
      },
    );
    seeded.set(unit, seeding);
    return seeding;
  }

  async function seed(accountId: string, teamId: string, day: ReturnType<typeof utcDay>, expiresAt: number): Promise<void> {
    const counters = services.counters;
    // The marker makes the seeding happen once per counters store, not once per process: with shared
    // counters (which survive a restart of one instance) the spend is already in them.
    const marker = seededMarkerKey(accountId, teamId, day.date);
    const claim = await Promise.resolve(counters.reserve(marker, 1, 1, expiresAt)).catch((error: unknown) => {
      throw new CountersUnavailable(error);
    });
    if (!claim.ok) return;
    try {
      const rows = await services.store.summarizeUsage({
        accountId,
        teamId,
        from: new Date(day.start).toISOString(),
        to: new Date(day.end).toISOString(),
      });
      const byProvider = new Map<string, number>();
      for (const row of rows) {
        if (row.provider === null || row.teamId !== teamId || !(row.costUsd > 0)) continue;
        byProvider.set(row.provider, (byProvider.get(row.provider) ?? 0) + row.costUsd);
      }
      for (const [provider, spent] of byProvider) {
        await counters.adjust(budgetKey(accountId, teamId, provider, day.date), toNanosCeil(spent), expiresAt);
      }
    } catch (error) {
      await counters.adjust(marker, -1, expiresAt);
      throw error;
    }
  }

  /**
   * The counters (Redis, with several instances) cannot answer: a budgeted request fails closed, since
   * no one could count what it spends. Forgetting which teams were seeded makes the first request
   * after the outage check the seeding marker again, so a Redis that lost its data is re-seeded.
   */
  function countersUnavailable(team: Pick<TeamView, 'id' | 'name'>, cause: unknown): Error {
    seeded.clear();
    logger.error(
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

  function refuse(
    context: RequestContext,
    team: TeamView,
    plan: WorstCasePlan,
    refusals: Refusal[],
    unpricedCandidates: string[],
    day: ReturnType<typeof utcDay>,
  ): never {
    let unpriced = unpricedCandidates;
    const now = services.clock.now();
    if (refusals.length === 0) {
      // One entry per model, not per key of its provider.
      unpriced = [...new Set(unpriced)];
      throw services.errors.create('model_unpriced', {
        detail:
          `Team '${team.name}' has a daily budget on ${[...new Set(unpriced.map((entry) => entry.split('/')[0]))].join(', ')}, ` +
          `and ${unpriced.join(', ')} has no price, so its cost cannot be reserved. An operator must set a price for the model first.`,
      });
    }
    const resetAt = new Date(day.end).toISOString();
    const first = refusals[0] as Refusal;
    // Any provider that only in-flight reservations refused may take the retry: it is worth seconds, not hours.
    const inFlightOnly = refusals.some(causedByInFlight);
    const model = dearestModel(plan, first.provider);
    const assumption = model === undefined ? undefined : outputAssumption(services.pricing, context.request, first.provider, model);
    const parts = refusals.map(describeRefusal).join('; ');
    // A worst case above the whole cap is refused tomorrow too: no wait helps, only a smaller request (QA14 N1).
    const neverFits = !inFlightOnly && refusals.every(aboveWholeBudget);
    const head = inFlightOnly
      ? `Team '${team.name}' (${team.id}) cannot reserve this request's worst case right now on ${parts}. Requests still in flight on this gateway hold that part of the daily budget until they end, when each keeps only its real cost: retry in ${IN_FLIGHT_RETRY_AFTER_SECONDS} s.`
      : neverFits
        ? `Team '${team.name}' (${team.id}) cannot serve this request on ${parts}: its worst case is above the whole daily budget, so it is refused however little was spent, today or after the reset.`
        : `Team '${team.name}' (${team.id}) has no daily budget left for this request on ${parts}.`;
    throw services.errors.create(
      'budget_exceeded',
      { detail: `${head}${outputLimitHint(assumption, context.endpoint, '')}${neverFits ? '' : ` The budget resets at ${resetAt}.`}` },
      {
        retryAfterSeconds: neverFits ? undefined : inFlightOnly ? IN_FLIGHT_RETRY_AFTER_SECONDS : Math.max(1, Math.ceil((day.end - now) / 1000)),
        // The official SDKs do not retry a 402; one refused by in-flight reservations is worth retrying once
        // they settle, and one that can never fit must not be retried by any client.
        headers: inFlightOnly ? { 'x-should-retry': 'true' } : neverFits ? { 'x-should-retry': 'false' } : undefined,
        extra: {
          budget: 'max_cost_per_day',
          team_id: team.id,
          provider: first.provider,
          limit_usd: nanosToUsd(first.limitNanos),
          remaining_usd: nanosToUsd(leftNanos(first)),
          in_flight_usd: nanosToUsd(first.heldHereNanos),
          worst_case_usd: nanosToUsd(first.worstNanos),
          ...outputAssumptionFields(assumption),
          reset_at: resetAt,
          budgets: refusals.map((refusal) => ({ provider: refusal.provider, limit_usd: nanosToUsd(refusal.limitNanos), reset_at: resetAt })),
        },
      },
    );
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
    const expiresAt = day.end + EXPIRY_MARGIN_MS;
    const seeding = ensureSeeded(team.accountId, team.id, team.name, budgets.unit, day, expiresAt);
    const state: CostCapState = { held: [] };
    context.state.set(COST_CAP_PLUGIN, state);
    /**
     * Reserves each budgeted provider's worst case in `entries`; answers the refusals, or a promise of
     * them when the counters are remote. A partial failure of the counters gives back what it got.
     */
    const reserveEntries = (entries: WorstCasePlan): Refusal[] | Promise<Refusal[]> => {
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
            ? counters.reserveLease(key, entry.nanos, limit, expiresAt, { id: leaseId, until: services.clock.now() + leaseMs })
            : counters.reserve(key, entry.nanos, limit, expiresAt);
        if (result instanceof Promise) waiting = true;
        wanted.push({ provider, key, nanos: entry.nanos, limit, leaseId });
        results.push(result);
      }
      const collect = (settled: Reservation[]): Refusal[] => {
        const refusals: Refusal[] = [];
        for (let index = 0; index < wanted.length; index++) {
          const { provider, key, nanos, limit, leaseId } = wanted[index] as Wanted;
          const result = settled[index] as Reservation;
          if (result.ok) {
            const held: HeldReservation = { key, provider, nanos, expiresAt, leaseId };
            state.held.push(held);
            leases.hold(held);
            inFlight.add(key, nanos);
          } else {
            refusals.push({ provider, limitNanos: limit, totalNanos: result.total, worstNanos: nanos, heldHereNanos: inFlight.of(key) });
          }
        }
        return refusals;
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
      const unpriced = dropUnserved(context, finalPlan, limits, refusals);
      if (context.candidates.length === 0) refuse(context, team, finalPlan, refusals, unpriced, day);
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
      const retried = retry.length === 0 ? [] : await reserveEntries(retry);
      conclude(refined, [...kept, ...retried]);
    };
    const reserve = (): void | Promise<void> => {
      const refusals = reserveEntries(plan);
      const settle = (found: Refusal[]): void | Promise<void> => (found.length === 0 ? conclude(plan, found) : retryCounted(found));
      return refusals instanceof Promise ? refusals.then(settle) : settle(refusals);
    };
    if (seeding !== undefined) return seeding.then(reserve);
    return reserve();
  }

  /**
   * A team's spend on a provider it has no budget for is counted all the same: a budget set later in
   * the day (or set again after being removed) starts from what the team already spent today, not from
   * zero. After the day's seeding, which every such count waits for, so no row is counted twice.
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
    const count = (): void | Promise<void> => {
      const result = services.counters.adjust(key, spent, expiresAt);
      if (result instanceof Promise) return result.then(() => undefined);
    };
    const seeding = ensureSeeded(team.accountId, team.id, team.name, budgets.unit, day, expiresAt, true);
    const counted = seeding === undefined ? count() : seeding.then(count);
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
            logger.warn(
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
