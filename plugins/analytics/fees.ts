// The operator's fees (PUT /v1/platform/settings), read when a report is made: the platform markup on
// what platform keys served, the BYOK fee on what the account's own keys served. A row's cost_usd stays
// the provider's list price (what the upstream bills, reconcilable with its invoice); the fees are added
// beside it, never folded into it. See docs/costs.md, "Fees".

import type { Services } from '../../core/spec/services.ts';
import { roundUsd } from './scope.ts';

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
 * are unpriced), rounded by `round` (analytics: to 1e-8; an export: to the nano-dollar of its rows).
 */
export function groupCost(cost: number, served: number, unpriced: number, round: (usd: number) => number = roundUsd): number | null {
  return unpricedOnly(served, unpriced) ? null : round(cost);
}
