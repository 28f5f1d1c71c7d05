// One request's reservations at `call`: the worst case of each budgeted provider among its candidates
// reserved, refused providers dropped (after counting the prompt with the provider's tokenizer once),
// unseeded counters seeded and tried again, and the 402 when nothing is left. A class rather than
// closures made per request: the request path made seven functions and their shared scope for every
// member request, most of them for the rare paths (bench/RESULTS.md, 2026-12-07 session 17).

import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Reservation, ReserveOptions } from '../../core/spec/counters.ts';
import type { Services } from '../../core/spec/services.ts';
import type { TeamView } from '../../plugins/teams/types.ts';
import { counterKey, type TeamBudgets } from './budgets.ts';
import type { createInFlightTally, createLeaseKeeper, HeldReservation } from './leases.ts';
import { budgetRefusal, budgetsNotSeededError, type Refusal } from './refusal.ts';
import type { createSeeding } from './seeding.ts';
import { plannedNanos, refineWorstCasePlan, type WorstCasePlan } from './worst-case.ts';

/** What a request keeps between `call` and `account`: the reservations it holds. */
export interface CostCapState {
  held: HeldReservation[];
}

/** What every request's reservations share: built once by the plugin. */
export interface CostCapShared {
  services: Services;
  leases: ReturnType<typeof createLeaseKeeper>;
  inFlight: ReturnType<typeof createInFlightTally>;
  seeding: ReturnType<typeof createSeeding>;
  leaseMs: number;
  /** A failure of the seeding as the request's answer. */
  seedingFailure(team: Pick<TeamView, 'id' | 'name'>, error: unknown): Error;
  /** An unreachable counters store as the request's answer (and the seeding checked again next time). */
  countersUnavailable(team: Pick<TeamView, 'id' | 'name'>, cause: unknown): Error;
}

/** One reservation a request asks for. */
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
export const SEED_ROUNDS = 2;

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

export class BudgetCall {
  /** Budgeted providers whose counters were still not seeded after the seeding: refused for now. */
  private unseededProviders: string[] | undefined;

  constructor(
    private readonly shared: CostCapShared,
    private readonly context: RequestContext,
    private readonly team: TeamView,
    private readonly budgets: TeamBudgets,
    private readonly plan: WorstCasePlan,
    private readonly day: { date: string; start: number; end: number },
    private readonly expiresAt: number,
    private readonly reserveOptions: ReserveOptions | undefined,
    private readonly state: CostCapState,
  ) {}

  start(): void | Promise<void> {
    const attempt = this.reserveEntries(this.plan);
    return attempt instanceof Promise ? attempt.then((answered) => this.afterAttempt(answered)) : this.afterAttempt(attempt);
  }

  /**
   * Reserves each budgeted provider's worst case in `entries`; answers the refusals and the entries
   * whose counters are not seeded, or a promise of them when the counters are remote. A partial
   * failure of the counters gives back what it got.
   */
  private reserveEntries(entries: WorstCasePlan): Attempt | Promise<Attempt> {
    const { services, leases, leaseMs } = this.shared;
    const counters = services.counters;
    const leasing = leases.enabled();
    const limits = this.budgets.limits;
    const wanted: Wanted[] = [];
    const results: Array<Reservation | Promise<Reservation>> = [];
    let waiting = false;
    for (const entry of entries) {
      const provider = entry.provider;
      const limit = limits.get(provider);
      if (limit === undefined || entry.nanos === undefined) continue;
      // Each counter's key is one string for the day: reserved, held, and given back on failure under it.
      const key = counterKey(this.team, this.budgets, provider, this.day.date);
      const leaseId = leasing ? crypto.randomUUID() : undefined;
      const result =
        leaseId !== undefined && counters.reserveLease !== undefined
          ? counters.reserveLease(key, entry.nanos, limit, this.expiresAt, { id: leaseId, until: services.clock.now() + leaseMs }, this.reserveOptions)
          : counters.reserve(key, entry.nanos, limit, this.expiresAt, this.reserveOptions);
      if (result instanceof Promise) waiting = true;
      wanted.push({ provider, key, nanos: entry.nanos, limit, leaseId, entry });
      results.push(result);
    }
    if (!waiting) return this.collect(wanted, results as Reservation[]);
    return Promise.all(results).then(
      (settled) => this.collect(wanted, settled),
      (error: unknown) => {
        this.giveBack(wanted, results);
        throw this.shared.countersUnavailable(this.team, error);
      },
    );
  }

  /** Any reservation this request did get is given back, so a partial failure books nothing. */
  private giveBack(wanted: Wanted[], results: Array<Reservation | Promise<Reservation>>): void {
    const counters = this.shared.services.counters;
    for (const [index, result] of results.entries()) {
      if (!(result instanceof Promise)) continue;
      const { key, nanos, leaseId } = wanted[index] as Wanted;
      result
        .then((granted) => {
          if (!granted.ok) return;
          if (leaseId !== undefined) return counters.settleLease?.(key, leaseId, 0, this.expiresAt);
          return counters.adjust(key, -nanos, this.expiresAt);
        })
        .catch(() => undefined);
    }
  }

  private collect(wanted: Wanted[], settled: Reservation[]): Attempt {
    const { leases, inFlight } = this.shared;
    const attempt: Attempt = { refusals: [], unseeded: undefined };
    for (let index = 0; index < wanted.length; index++) {
      const { provider, key, nanos, limit, leaseId, entry } = wanted[index] as Wanted;
      const result = settled[index] as Reservation;
      if (result.ok) {
        const held: HeldReservation = { key, provider, nanos, date: this.day.date, expiresAt: this.expiresAt, leaseId };
        this.state.held.push(held);
        // Named on the request, so a crash while its call is in flight leaves the lease in its mark (core/accounting/in-flight.ts).
        if (leaseId !== undefined) (this.context.leases ??= []).push({ provider, key, leaseId, expiresAt: this.expiresAt });
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
  }

  private afterAttempt(attempt: Attempt): void | Promise<void> {
    if (attempt.unseeded !== undefined) return this.seedAndRetry(attempt);
    return attempt.refusals.length === 0 ? this.conclude(this.plan, attempt.refusals) : this.retryCounted(attempt.refusals);
  }

  private conclude(finalPlan: WorstCasePlan, refusals: Refusal[]): void {
    const unpriced = dropUnserved(this.context, finalPlan, this.budgets.limits, refusals, this.unseededProviders);
    if (this.context.candidates.length > 0) return;
    const services = this.shared.services;
    // Not seeded yet is worth a retry in a second; a refusal of spend on another provider is not.
    if (this.unseededProviders !== undefined) throw budgetsNotSeededError(services, this.team, this.unseededProviders);
    throw budgetRefusal(services, this.context, this.team, finalPlan, refusals, unpriced, this.day);
  }

  /**
   * The byte bound refused some provider: its prompt is counted again with the provider's own
   * tokenizer (exact for the model, never above the bound), and a provider whose smaller worst case
   * may now fit tries once more. A provider without a tokenizer keeps its refusal.
   */
  private async retryCounted(refusals: Refusal[]): Promise<void> {
    const refined = await refineWorstCasePlan(this.shared.services.pricing, this.context);
    const retry: WorstCasePlan = [];
    const kept: Refusal[] = [];
    for (const refusal of refusals) {
      const entry = refined.find((candidate) => candidate.provider === refusal.provider);
      if (entry?.nanos !== undefined && entry.nanos < refusal.worstNanos) retry.push(entry);
      else kept.push(refusal);
    }
    const retried = retry.length === 0 ? undefined : await this.reserveEntries(retry);
    // A refusal of the counted worst case keeps the bound it was first refused at: what identical requests in flight reserved.
    for (const refusal of retried?.refusals ?? []) refusal.boundNanos = refusals.find((first) => first.provider === refusal.provider)?.worstNanos;
    // Its counter lost its data in the moment between: refused for now, as any unseeded one.
    for (const entry of retried?.unseeded ?? []) (this.unseededProviders ??= []).push(entry.provider);
    this.conclude(refined, retried === undefined ? kept : [...kept, ...retried.refusals]);
  }

  /**
   * Some counters do not hold today's spend (they start empty, or Redis lost them): the day is seeded
   * from the store (or another process's seeding awaited), then those providers reserve again. One
   * still not seeded after that is refused for now, never reserved against a counter from zero.
   */
  private async seedAndRetry(first: Attempt): Promise<void> {
    const { seeding } = this.shared;
    let refusals = first.refusals;
    let pending = first.unseeded;
    for (let round = 0; round < SEED_ROUNDS && pending !== undefined; round++) {
      const over = await seeding.ensure(this.team, this.day, this.expiresAt, this.budgets.limits.keys()).catch((error: unknown) => {
        throw this.shared.seedingFailure(this.team, error);
      });
      // Another process still reads: waiting longer would hold the request up for a slow database.
      if (!over) break;
      const again = await this.reserveEntries(pending);
      refusals = again.refusals.length === 0 ? refusals : [...refusals, ...again.refusals];
      pending = again.unseeded;
    }
    if (pending !== undefined) this.unseededProviders = pending.map((entry) => entry.provider);
    return refusals.length === 0 ? this.conclude(this.plan, refusals) : this.retryCounted(refusals);
  }
}
