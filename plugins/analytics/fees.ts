// The operator's fees (PUT /v1/platform/settings), read when a report is made: the platform markup on
// what platform keys served, the BYOK fee on what the account's own keys served. A row's cost_usd stays
// the provider's list price (what the upstream bills, reconcilable with its invoice); the fees are added
// beside it, never folded into it. See docs/costs.md, "Fees".

import type { Services } from '../../core/spec/services.ts';
import { roundUsd } from '../../core/catalog/pricing.ts';

export const DEFAULT_MARKUP_PERCENT = 5;
export const DEFAULT_BYOK_FEE_PERCENT = 0;

export interface FeeRates {
  platform_markup_percent: number;
  byok_fee_percent: number;
}

function percentSetting(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

export function feeRates(services: Services): FeeRates {
  const platform = services.snapshot.current.platformSettings;
  return {
    platform_markup_percent: percentSetting(platform.platform_markup_percent, DEFAULT_MARKUP_PERCENT),
    byok_fee_percent: percentSetting(platform.byok_fee_percent, DEFAULT_BYOK_FEE_PERCENT),
  };
}

/**
 * The rates in force over time. PUT /v1/platform/settings appends each change to the platform setting
 * `fee_history` (`{from, platform_markup_percent, byok_fee_percent}`, the first `from` null: the rates
 * before the first recorded change). A row is billed at the rates in force when it was booked, as a price
 * change applies to rows booked after it (QA18: a rate set today rewrote last quarter's bill). Without a
 * history (no change since this was added), today's rates apply to every row, as before.
 */
export interface FeeSchedule {
  current: FeeRates;
  /** Sorted by `from` (ms since the epoch; -Infinity for the first). Empty: `current` for all time. */
  changes: ReadonlyArray<{ from: number; rates: FeeRates }>;
}

export function feeSchedule(services: Services): FeeSchedule {
  const current = feeRates(services);
  const history = services.snapshot.current.platformSettings.fee_history;
  if (!Array.isArray(history)) return { current, changes: [] };
  const changes: Array<{ from: number; rates: FeeRates }> = [];
  for (const entry of history as unknown[]) {
    if (entry === null || typeof entry !== 'object') continue;
    const record = entry as Record<string, unknown>;
    const from = typeof record.from === 'string' ? Date.parse(record.from) : Number.NEGATIVE_INFINITY;
    if (Number.isNaN(from)) continue;
    changes.push({
      from,
      rates: {
        platform_markup_percent: percentSetting(record.platform_markup_percent, DEFAULT_MARKUP_PERCENT),
        byok_fee_percent: percentSetting(record.byok_fee_percent, DEFAULT_BYOK_FEE_PERCENT),
      },
    });
  }
  changes.sort((left, right) => left.from - right.from);
  return { current, changes };
}

/** The rates in force at `at` (ms): the last change at or before it, else the first recorded, else today's. */
export function ratesAt(schedule: FeeSchedule, at: number): FeeRates {
  let rates = schedule.changes[0]?.rates ?? schedule.current;
  for (const change of schedule.changes) {
    if (change.from > at) break;
    rates = change.rates;
  }
  return rates;
}

/** The period cut where the rates changed inside it: one piece (the whole period) when they did not. */
export function feeIntervals(schedule: FeeSchedule, from: Date, to: Date): Array<{ from: Date; to: Date; rates: FeeRates }> {
  const pieces: Array<{ from: Date; to: Date; rates: FeeRates }> = [];
  let start = from.getTime();
  const cuts = schedule.changes.map((change) => change.from).filter((cut) => cut > start && cut < to.getTime());
  for (const cut of [...cuts, to.getTime()]) {
    pieces.push({ from: new Date(start), to: new Date(cut), rates: ratesAt(schedule, start) });
    start = cut;
  }
  return pieces;
}

/** The fees on a priced cost split by whose keys served it (unrounded, so sums stay exact). */
export function feesOn(byokCost: number, platformCost: number, rates: FeeRates): number {
  return (platformCost * rates.platform_markup_percent) / 100 + (byokCost * rates.byok_fee_percent) / 100;
}

/**
 * True when every request of a group that a provider served is unpriced: nothing is known of what the
 * group cost, and a made-up $0 would read as free. Requests no provider served cost nothing and do not
 * make a group priced or unpriced. The same rule as GET /v1/usage/me (plugins/teams).
 */
export const unpricedOnly = (served: number, unpriced: number): boolean => served > 0 && unpriced === served;

/**
 * A group's cost: null when it is unpriced only, else the priced requests' sum (a lower bound when some
 * are unpriced), to the nano-dollar the rows are booked to: analytics, the cost comparison and the
 * export give the same figure for the same rows, and a total is its entries' sum (QA19: analytics cut
 * sums to 1e-8, so a total read $0.00014393 where the export, from the same rows, read $0.000143935).
 */
export function groupCost(cost: number, served: number, unpriced: number): number | null {
  return unpricedOnly(served, unpriced) ? null : roundUsd(cost);
}
