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

/**
 * A number in plain decimal notation, never an exponent: `0.00000016`, not JavaScript's `1.6e-7`;
 * `1000000000000000000000`, not `1e+21`. The digits are the shortest ones that read back as the same
 * number (String's), moved around the decimal point, so nothing is rounded and no float noise is added.
 * Finance importers and spreadsheets take one format (docs/analytics.md, "Numbers").
 */
export function plainDecimal(value: number): string {
  const text = String(value);
  const exponentAt = text.indexOf('e');
  if (exponentAt === -1) return text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, exponentAt);
  const exponent = Number(text.slice(exponentAt + 1));
  const point = mantissa.indexOf('.');
  const digits = point === -1 ? mantissa : mantissa.slice(0, point) + mantissa.slice(point + 1);
  // Where the decimal point falls in `digits` once the exponent is applied.
  const position = (point === -1 ? mantissa.length : point) + exponent;
  const sign = negative ? '-' : '';
  if (position <= 0) return `${sign}0.${'0'.repeat(-position)}${digits}`;
  if (position >= digits.length) return `${sign}${digits}${'0'.repeat(position - digits.length)}`;
  return `${sign}${digits.slice(0, position)}.${digits.slice(position)}`;
}

/**
 * Money in every message (errors, alerts, e-mails, Slack): `$1234.50`, `$0.50`, `$0.000043`,
 * `$99.99982`, `-$0.0000021`. Exact to the nano-dollar (the unit costs are booked in), at least the
 * cents, zeros past the cents dropped, never an exponent; an amount below a nano-dollar keeps its own
 * digits, so a nonzero amount never reads `$0.00`. One formatter for all of them: an approval refusal
 * printed its threshold `$1e-7` while alerts printed `$0.0000001`, and a budget's `$99.99982` left must
 * not read as its `$100.00` limit.
 */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return `$${usd}`;
  const sign = usd < 0 ? '-' : '';
  const magnitude = Math.abs(usd);
  // toFixed writes plain decimals below 1e21; above, the amount has no cents left to show.
  const digits = magnitude > 0 && magnitude < 0.5 / NANOS_PER_USD ? plainDecimal(magnitude) : magnitude < 1e21 ? magnitude.toFixed(9) : plainDecimal(magnitude);
  const shown = digits.includes('.') ? digits.replace(/(\.\d\d\d*?)0+$/, '$1') : `${digits}.00`;
  return `${sign}$${/\.\d$/.test(shown) ? `${shown}0` : shown}`;
}

/** Nano-dollars as `formatUsd` shows them. */
export function formatNanos(nanos: number): string {
  return formatUsd(nanosToUsd(nanos));
}
