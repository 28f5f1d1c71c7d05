// Seeding a team's budget counters with what the store has booked for it today. Counters start empty
// (a lone process restarts) or lose their data without a failed command (Redis restarted without
// persistence, flushed, evicting, or failed over to a replica that was behind: QA15 #1), so every
// budgeted reservation asks for a seeded counter (`ReserveOptions.seeded`) in the same atomic step, and
// a counter that is not seeded sends the request here instead of counting again from zero.
//
// One process per counters store reads the day's spend, under a short claim (a counter of its own);
// the others wait until the claim is released or lapses and then ask their counter again, so no
// process reserves against a counter that lacks the day's spend (QA15 #2). `seed` is idempotent per
// counter, so two processes that both read (a claim that lapsed during a slow read) still add once.

import { toNanosCeil } from '../../core/catalog/nano-usd.ts';
import type { ReserveOptions, SeedEntry } from '../../core/spec/counters.ts';
import type { Services } from '../../core/spec/services.ts';
import type { utcDay } from './worst-case.ts';

type Day = ReturnType<typeof utcDay>;

/**
 * The counter of a team's spend on one provider on one UTC day, in nano-dollars. `v3` (QA15): a counter
 * carries its seeded mark, which counters written before (`v2`, a marker per team and day) lack; a new
 * name makes a running deployment seed today's spend again rather than add it twice. `v2` (QA14):
 * nano-dollars, where the keys before held micro-dollars.
 */
export function budgetKey(accountId: string, teamId: string, provider: string, date: string): string {
  return `budget:v3:${accountId}:${teamId}:${provider}:${date}`;
}

/** The claim of the process reading a team's day from the store: 1 while it reads, released after (or lapsed). */
export function seedingClaimKey(accountId: string, teamId: string, date: string): string {
  return `budget-seeding:v3:${accountId}:${teamId}:${date}`;
}

/**
 * For counters without `seed` (an out-of-tree implementation): claimed once per counters store and
 * day, as before QA15. Such counters cannot say that they lost their data.
 */
export function seededMarkerKey(accountId: string, teamId: string, date: string): string {
  return `budget-seeded:v3:${accountId}:${teamId}:${date}`;
}

/** A claim lasts this long unless released: a process that dies while reading holds the team's budget up for no longer. */
export const SEED_CLAIM_MS = 5_000;
/** How long a request waits for another process's seeding before it is refused (and told to retry in a second). */
export const SEED_WAIT_MS = 2_000;
const SEED_POLL_MS = 25;
/** Retry-After of a budgeted request refused because its counters are not seeded yet: a database read away. */
export const SEEDING_RETRY_AFTER_SECONDS = 1;

const SEEDED: ReserveOptions = { seeded: true };

/** A counters call that failed (not a refusal): tells an unreachable counters store apart from a store error. */
export class CountersUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super('counters unavailable');
  }
}

export interface SeedingTeam {
  accountId: string;
  id: string;
  name: string;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

export function createSeeding(services: Services) {
  const logger = services.logger;
  /** Seedings this process runs or waits for, by team and day: concurrent requests share one. */
  const running = new Map<string, Promise<boolean>>();
  /** Without `seed`: the team-days this process has seeded (cleared when the day changes). */
  let legacyDate = '';
  const legacySeeded = new Map<string, Promise<void> | true>();

  const counted = async <T>(operation: () => T | Promise<T>): Promise<T> => {
    try {
      return await operation();
    } catch (error) {
      throw new CountersUnavailable(error);
    }
  };

  /** Today's booked spend of the team per provider, in nano-dollars; a store that cannot answer is a 503 not_ready. */
  async function bookedSpend(team: SeedingTeam, day: Day): Promise<Map<string, number>> {
    let rows: Awaited<ReturnType<Services['store']['summarizeUsage']>>;
    try {
      rows = await services.store.summarizeUsage({
        accountId: team.accountId,
        teamId: team.id,
        from: new Date(day.start).toISOString(),
        to: new Date(day.end).toISOString(),
      });
    } catch (error) {
      logger.error({ teamId: team.id, error: error instanceof Error ? error.message : String(error) }, 'could not read today’s spend to seed the budget');
      throw services.errors.create('not_ready', {
        detail: 'The team’s budget cannot be checked right now (today’s spend could not be read). Retry shortly.',
      });
    }
    const spent = new Map<string, number>();
    for (const row of rows) {
      if (row.provider === null || row.teamId !== team.id || !(row.costUsd > 0)) continue;
      spent.set(row.provider, (spent.get(row.provider) ?? 0) + row.costUsd);
    }
    const nanos = new Map<string, number>();
    for (const [provider, usd] of spent) nanos.set(provider, toNanosCeil(usd));
    return nanos;
  }

  /** Until another process releases its claim (or it lapses): true, or false if it is still held after SEED_WAIT_MS. */
  async function waitForClaim(claim: string): Promise<boolean> {
    const deadline = performance.now() + SEED_WAIT_MS;
    while (performance.now() < deadline) {
      await sleep(SEED_POLL_MS);
      if ((await counted(() => services.counters.get(claim))) === 0) return true;
    }
    return false;
  }

  async function seedOnce(team: SeedingTeam, day: Day, expiresAt: number, providers: Iterable<string>): Promise<boolean> {
    const counters = services.counters;
    const seed = counters.seed?.bind(counters) as NonNullable<typeof counters.seed>;
    const claim = seedingClaimKey(team.accountId, team.id, day.date);
    const claimEnd = () => services.clock.now() + SEED_CLAIM_MS;
    const claimed = await counted(() => counters.reserve(claim, 1, 1, claimEnd()));
    if (!claimed.ok) return waitForClaim(claim);
    try {
      const spent = await bookedSpend(team, day);
      // Every provider the team spent on today, and every one the caller needs: a budgeted provider with
      // no spend yet is seeded at 0, so it does not send the next request here again.
      const entries: SeedEntry[] = [];
      const seen = new Set<string>();
      for (const provider of [...spent.keys(), ...providers]) {
        if (seen.has(provider)) continue;
        seen.add(provider);
        entries.push({ key: budgetKey(team.accountId, team.id, provider, day.date), amount: spent.get(provider) ?? 0 });
      }
      await counted(() => seed(entries, expiresAt));
      return true;
    } finally {
      // Released at once, so processes waiting on it go ahead now rather than when it lapses.
      await Promise.resolve(counters.adjust(claim, -1, claimEnd())).catch(() => undefined);
    }
  }

  async function seedLegacy(team: SeedingTeam, day: Day, expiresAt: number): Promise<void> {
    const counters = services.counters;
    const marker = seededMarkerKey(team.accountId, team.id, day.date);
    const claim = await counted(() => counters.reserve(marker, 1, 1, expiresAt));
    if (!claim.ok) return;
    try {
      for (const [provider, nanos] of await bookedSpend(team, day)) {
        await counted(() => counters.adjust(budgetKey(team.accountId, team.id, provider, day.date), nanos, expiresAt));
      }
    } catch (error) {
      await Promise.resolve(counters.adjust(marker, -1, expiresAt)).catch(() => undefined);
      throw error;
    }
  }

  return {
    /** Whether the counters mark seeded counters (`seed`): then reservations ask for one and `ensure` runs on demand. */
    guarded(): boolean {
      return services.counters.seed !== undefined;
    },

    /** What a budgeted reservation asks of the counters: a seeded counter, where they can tell. */
    reserveOptions(): ReserveOptions | undefined {
      return services.counters.seed !== undefined ? SEEDED : undefined;
    },

    /**
     * Seeds the team's counters for the day, or waits while another process does. Resolves true once
     * that is over (seeded here, or the other process's claim released or lapsed: the caller asks its
     * counter again, and seeds again if it is still not seeded), false when the other process still
     * holds its claim after SEED_WAIT_MS (the request is refused for now). Concurrent callers in this
     * process share one attempt. Rejects with CountersUnavailable, or with 503 not_ready when the store
     * cannot be read.
     */
    ensure(team: SeedingTeam, day: Day, expiresAt: number, providers: Iterable<string>): Promise<boolean> {
      const unit = `${team.accountId}:${team.id}:${day.date}`;
      const known = running.get(unit);
      if (known !== undefined) return known;
      const attempt = seedOnce(team, day, expiresAt, providers).finally(() => running.delete(unit));
      running.set(unit, attempt);
      return attempt;
    },

    /**
     * Counters without `seed` only: what must happen before this process's first reservation or count
     * of the team's day (the store's spend added once per counters store), or undefined once done.
     */
    before(team: SeedingTeam, unit: string, day: Day, expiresAt: number): Promise<void> | undefined {
      if (services.counters.seed !== undefined) return undefined;
      if (legacyDate !== day.date) {
        legacySeeded.clear();
        legacyDate = day.date;
      }
      const known = legacySeeded.get(unit);
      if (known === true) return undefined;
      if (known !== undefined) return known;
      const seeding = seedLegacy(team, day, expiresAt).then(
        () => void legacySeeded.set(unit, true),
        (error: unknown) => {
          legacySeeded.delete(unit);
          throw error;
        },
      );
      legacySeeded.set(unit, seeding);
      return seeding;
    },

    /** The counters failed: a process without `seed` checks its marker again on the next request. */
    forget(): void {
      legacySeeded.clear();
    },
  };
}
