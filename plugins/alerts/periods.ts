// Alert periods in UTC. A cost threshold fires once per day, ISO week (Monday to Monday) or calendar
// month; error rates, provider outages and anomalies once per clock hour. Roll-up buckets are hour
// strings (`YYYY-MM-DDTHH`), so a period is a half-open range of them.

import type { CostPeriod } from './schema.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export interface PeriodWindow {
  /** The de-duplication key: `2026-12-05`, `2026-W49`, `2026-12`, `2026-12-05T14`. */
  key: string;
  start: Date;
  end: Date;
}

export function hourKey(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 13);
}

export function hourWindow(epochMs: number): PeriodWindow {
  const start = Math.floor(epochMs / HOUR_MS) * HOUR_MS;
  return { key: hourKey(start), start: new Date(start), end: new Date(start + HOUR_MS) };
}

/** ISO 8601 week number and its year (the year of the week's Thursday). */
function isoWeek(monday: Date): string {
  const thursday = new Date(monday.getTime() + 3 * DAY_MS);
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  const week = Math.floor((thursday.getTime() - yearStart) / (7 * DAY_MS)) + 1;
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

export function costPeriodWindow(period: CostPeriod, epochMs: number): PeriodWindow {
  const now = new Date(epochMs);
  const day = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  if (period === 'daily') return { key: new Date(day).toISOString().slice(0, 10), start: new Date(day), end: new Date(day + DAY_MS) };
  if (period === 'weekly') {
    const monday = day - ((now.getUTCDay() + 6) % 7) * DAY_MS;
    return { key: isoWeek(new Date(monday)), start: new Date(monday), end: new Date(monday + 7 * DAY_MS) };
  }
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  return { key: start.toISOString().slice(0, 7), start, end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)) };
}
