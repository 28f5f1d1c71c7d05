// Numbers in JSON answers written in plain decimal notation: JSON.stringify writes 1.6e-7 for a
// cost of $0.00000016 (and 1e+21 from there up), which finance importers read as text or not at
// all. docs/analytics.md, "Names and numbers". The value is the same number; only its spelling changes.

import { plainDecimal } from '../../core/catalog/nano-usd.ts';

/** JSON.rawJSON (TC39 "JSON.parse source text access"; Bun has it): JSON.stringify writes its text as is. */
const { rawJSON } = JSON as unknown as { rawJSON(text: string): object };

/** True for the numbers String() writes with an exponent: nonzero below 1e-6, or 1e21 and up. */
export function needsPlainSpelling(value: number): boolean {
  const magnitude = Math.abs(value);
  return (magnitude < 1e-6 && magnitude > 0) || (magnitude >= 1e21 && Number.isFinite(magnitude));
}

/** A number JSON.stringify writes in plain decimals: itself, or its plain text as raw JSON. */
export function plainJsonNumber(value: number): number | object {
  return needsPlainSpelling(value) ? rawJSON(plainDecimal(value)) : value;
}

/** A copy of an answer whose numbers JSON.stringify writes in plain decimals (objects and arrays walked). */
export function withPlainNumbers(value: unknown): unknown {
  if (typeof value === 'number') return plainJsonNumber(value);
  if (Array.isArray(value)) return value.map(withPlainNumbers);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) copy[name] = withPlainNumbers(field);
  return copy;
}
