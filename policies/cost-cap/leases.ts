// The reservations a process holds: the tally of what its requests in flight hold per counter, and
// the lease keeper that renews them while their requests live (and retries settlements the counters
// could not take). Split from index.ts, which runs the hooks.

import type { Services } from '../../core/spec/services.ts';

/** One reservation a request holds until `account`. */
export interface HeldReservation {
  key: string;
  provider: string;
  nanos: number;
  /** The UTC day (YYYY-MM-DD) of the counter `key` names. */
  date: string;
  expiresAt: number;
  /** Set when the counters hold reservations as leases (shared counters): settled by lease. */
  leaseId?: string;
}

/** Settlements kept for retry while the counters are away; past this, a lease simply lapses and its cost goes unbooked. */
const MAX_UNSETTLED = 10_000;

/**
 * The nano-dollars this process's live reservations hold, per counter key: added when a reservation is
 * granted, taken off when its request settles, so a refusal can tell spend from reservations that will
 * clear in seconds. One number per team, provider and day, updated in place: nothing is allocated per
 * request. Counters that hold reservations as leases (Redis, the primary's under KEYWAY_WORKERS) say on
 * a refusal what every process's hold (`Reservation.leased`), which a refusal prefers; for the others
 * (one process's memory) this tally is all there is (docs/policies.md, "Retry-After: seconds when only
 * in-flight reservations refused").
 */
export function createInFlightTally() {
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

/**
 * Renews the leases of this process's live reservations, all of them in one pipelined batch every
 * few seconds, while their requests live. A crashed process renews nothing, so its reservations
 * lapse within `leaseMs`. Only counters that offer leases (Redis, and the primary's counters under
 * KEYWAY_WORKERS) use this; a lone process's in-memory counters die with it.
 */
export function createLeaseKeeper(services: Services, leaseMs: number) {
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
