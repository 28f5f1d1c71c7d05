// Money in alert details. Messages show money with core's one formatter (formatUsd in
// core/catalog/nano-usd.ts, shared with every error message); details carry the figures themselves.

const NANO = 1e9;

/** A figure for an alert's details: to the nano-dollar, as costs are booked and analytics sum them. */
export function nanoUsd(value: number): number {
  return Math.round(value * NANO) / NANO;
}
