// Usage periods, in UTC: `today`, `current_month`, `last_30_days`, `last_quarter` (the previous full
// calendar quarter), or `start`/`end` as ISO 8601 instants. `from` is inclusive, `to` exclusive.

export const PERIODS = ['today', 'current_month', 'last_30_days', 'last_quarter'] as const;
export type PeriodName = (typeof PERIODS)[number];

export interface Period {
  name: string;
  from: Date;
  to: Date;
}

const DAY_MS = 86_400_000;

export function utcDayStart(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}

/** The period a query names, or a message saying what is wrong with it. */
export function parsePeriod(query: URLSearchParams, nowMs: number): Period | { error: string; param: string } {
  const now = new Date(nowMs);
  const start = query.get('start');
  const end = query.get('end');
  const name = query.get('period');
  if (start !== null || end !== null) {
    if (name !== null) return { error: 'send either period or start/end, not both', param: 'period' };
    const from = start === null ? undefined : parseInstant(start);
    if (from === undefined) return { error: 'must be an ISO 8601 date or instant (2026-01-31 or 2026-01-31T00:00:00Z)', param: 'start' };
    const to = end === null ? now : parseInstant(end);
    if (to === undefined) return { error: 'must be an ISO 8601 date or instant (2026-01-31 or 2026-01-31T00:00:00Z)', param: 'end' };
    if (to.getTime() <= from.getTime()) return { error: 'must be after start', param: 'end' };
    return { name: 'custom', from, to };
  }
  const period = name ?? 'current_month';
  const today = utcDayStart(now);
  switch (period) {
    case 'today':
      return { name: period, from: today, to: new Date(today.getTime() + DAY_MS) };
    case 'current_month':
      return {
        name: period,
        from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
        to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
      };
    case 'last_30_days':
      return { name: period, from: new Date(nowMs - 30 * DAY_MS), to: new Date(nowMs + 1) };
    case 'last_quarter': {
      const quarterStartMonth = Math.floor(now.getUTCMonth() / 3) * 3;
      return {
        name: period,
        from: new Date(Date.UTC(now.getUTCFullYear(), quarterStartMonth - 3, 1)),
        to: new Date(Date.UTC(now.getUTCFullYear(), quarterStartMonth, 1)),
      };
    }
    default:
      return { error: `must be one of ${PERIODS.join(', ')}, or start and end as ISO 8601`, param: 'period' };
  }
}

function parseInstant(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : /T[^Z+-]*$/.test(text) ? `${text}Z` : text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
