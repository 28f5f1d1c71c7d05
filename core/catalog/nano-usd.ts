// Money as integer nano-dollars: the unit a usage row's cost is booked to (core/catalog/pricing.ts,
// roundUsd). Budgets count in it so a settled request adds what the books say it cost: counted in
// micro-dollars rounded up, an $8e-8 embedding added $1e-6 (12 times its cost) and a budget ran out at
// 8 % of its real spend (QA14). Integers stay exact in a double up to 2^53 nano-dollars (about
// $9 million), which is what every counter and sum of them relies on.

export const NANOS_PER_USD = 1_000_000_000;

/** The largest count of nano-dollars a double holds exactly: a budget limit is capped here. */
export const MAX_EXACT_NANOS = Number.MAX_SAFE_INTEGER;

/**
 * How far from a whole nano-dollar a product may land by float noise alone: a thousandth of one, or a
 * few units in the last place of a large figure. 0.1 + 0.2 dollars is 300,000,000 nano-dollars, not
 * 300,000,001; a booked cost (a whole number of nano-dollars) comes back as exactly that number.
 */
function noiseOf(nanos: number): number {
  return Math.max(1e-3, Math.abs(nanos) * Number.EPSILON * 4);
}

/** USD to nano-dollars, rounded up (a worst case, a settled cost): never under-counted, float noise aside. */
export function toNanosCeil(usd: number): number {
  const nanos = usd * NANOS_PER_USD;
  if (!(nanos > 0)) return 0;
  const nearest = Math.round(nanos);
  return Math.abs(nanos - nearest) <= noiseOf(nanos) ? nearest : Math.ceil(nanos);
}

/** USD to nano-dollars, rounded down (a limit, a threshold): never raised by rounding, float noise aside. */
export function toNanosFloor(usd: number): number {
  const nanos = usd * NANOS_PER_USD;
  if (!(nanos > 0)) return 0;
  const nearest = Math.round(nanos);
  return Math.abs(nanos - nearest) <= noiseOf(nanos) ? nearest : Math.floor(nanos);
}

/**
 * A daily budget's limit in nano-dollars: rounded down, and capped where integers stop being exact.
 * A counter never holds more than its limit through reservations, so its sums stay exact; a cap above
 * ~$9,007,199 a day per provider is enforced as that (docs/policies.md, "Units and rounding").
 */
export function budgetLimitNanos(usd: number): number {
  return Math.min(toNanosFloor(usd), MAX_EXACT_NANOS);
}

/** Nano-dollars back to USD, for answers: the figure is exact to the nano-dollar. */
export function nanosToUsd(nanos: number): number {
  return nanos / NANOS_PER_USD;
}

/** `$0.00002`, `$1.60006`, `$0.00`: to the nano-dollar, trailing zeros past the cents dropped. */
export function formatNanos(nanos: number): string {
  return `$${(nanos / NANOS_PER_USD).toFixed(9).replace(/(\.\d\d\d*?)0+$/, '$1')}`;
}
