// Numbers with their units, times in the viewer's own timezone.

import { formatUsd } from '../../../core/catalog/nano-usd.ts';

const usdLarge = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', maximumFractionDigits: 2 });
const count = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** Significant digits an amount under a dollar keeps: enough to tell a spend from a threshold next to it. */
const SMALL_DIGITS = 4;

/**
 * `$1,234.56` from a dollar up; under a dollar, four significant digits spelt by the API's own money
 * formatter (`$0.004812`, `$0.00001812`: no exponent, and an amount that is not zero never reads
 * `$0.00`; four fixed decimals showed a reseller saving of $0.000018 as $0.00).
 */
export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return 'unpriced';
  if (value === 0 || Math.abs(value) >= 1) return usdLarge.format(value);
  const rounded = Number(value.toPrecision(SMALL_DIGITS));
  return Math.abs(rounded) >= 1 ? usdLarge.format(rounded) : formatUsd(rounded);
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
