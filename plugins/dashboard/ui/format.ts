// Numbers with their units, times in the viewer's own timezone.

const usdLarge = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', maximumFractionDigits: 2 });
const usdSmall = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', maximumFractionDigits: 4 });
const count = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return 'unpriced';
  return Math.abs(value) > 0 && Math.abs(value) < 1 ? usdSmall.format(value) : usdLarge.format(value);
}

export const integer = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : count.format(value));
export const requests = (value: number | null | undefined): string => `${integer(value)} req`;
export const tokens = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : `${compact.format(value)} tokens`);
export const milliseconds = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : `${count.format(value)} ms`);
export const percent = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : `${value.toFixed(1)} %`);

export function time(iso: string | null | undefined): string {
  if (!iso) return '–';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** A UTC day bucket (`2026-12-05`) as the viewer's calendar date. */
export function day(bucket: string): string {
  const date = new Date(`${bucket}T12:00:00Z`);
  return Number.isNaN(date.getTime()) ? bucket : dayOnly.format(date);
}
