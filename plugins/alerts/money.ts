// Money in alert messages (the event, e-mail, Slack, webhooks). Costs are booked to the nano-dollar and
// thresholds may be a few micro-dollars, so a fixed number of decimals turned $0.000043 of spend and a
// $0.00002 threshold into "$0.0000 … threshold of $0.0000". Details carry the figures themselves.

/** Significant digits shown below a dollar: enough to tell a spend from the threshold it crossed. */
const SIGNIFICANT_DIGITS = 4;
const NANO = 1e9;

/**
 * `$1234.50` from a dollar up; below it, four significant digits with at least the cents
 * (`$0.1235`, `$0.50`, `$0.000043`); never `$0.00` for an amount that is not zero.
 */
export function formatUsd(value: number): string {
  if (!Number.isFinite(value)) return `$${value}`;
  const sign = value < 0 ? '-' : '';
  const magnitude = Math.abs(value);
  if (magnitude === 0 || magnitude >= 1) return `${sign}$${magnitude.toFixed(2)}`;
  const decimals = Math.max(2, SIGNIFICANT_DIGITS - 1 - Math.floor(Math.log10(magnitude)));
  if (decimals > 100) return `${sign}$${magnitude.toExponential(SIGNIFICANT_DIGITS - 1)}`;
  // Zeros past the cents say nothing ($0.000043, not $0.00004300).
  return `${sign}$${magnitude.toFixed(decimals).replace(/(\.\d{2}\d*?)0+$/, '$1')}`;
}

/** A figure for an alert's details: to the nano-dollar, as costs are booked and analytics sum them. */
export function nanoUsd(value: number): number {
  return Math.round(value * NANO) / NANO;
}
