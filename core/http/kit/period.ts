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
    if (start === null) return { error: 'start is required when end is given', param: 'start' };
    const from = parseInstant(start);
    if (typeof from === 'string') return { error: from, param: 'start' };
    const to = end === null ? now : parseInstant(end);
    if (typeof to === 'string') return { error: to, param: 'end' };
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

const FORMAT_ERROR = 'must be an ISO 8601 date or instant (2026-01-31 or 2026-01-31T00:00:00Z)';
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * What is wrong with the calendar fields of a well-formed instant, if anything. Checked by hand because
 * Date rolls an overflowing day into the next month (2026-02-30 becomes March 2nd) instead of refusing it,
 * and a period the caller did not ask for must never be answered.
 */
function calendarError(fields: RegExpExecArray): string | undefined {
  const [, yearText, monthText, dayText, hourText, minuteText, secondText] = fields;
  const date = `${yearText}-${monthText}-${dayText}`;
  const year = Number(yearText);
  const month = Number(monthText);
  const day = Number(dayText);
  if (month < 1 || month > 12) return `${date} is not a calendar date (there is no month ${monthText})`;
  const days = daysInMonth(year, month);
  if (day < 1 || day > days) return `${date} is not a calendar date (${MONTH_NAMES[month - 1]} ${yearText} has ${days} days)`;
  if (hourText !== undefined && Number(hourText) > 23) return `hour ${hourText} does not exist (00 to 23)`;
  if (minuteText !== undefined && Number(minuteText) > 59) return `minute ${minuteText} does not exist (00 to 59)`;
  if (secondText !== undefined && Number(secondText) > 59) return `second ${secondText} does not exist (00 to 59)`;
  return undefined;
}

/** What is wrong with a `YYYY-MM-DD` date, if anything: its form, or a day the calendar does not have. */
export function calendarDateError(text: string): string | undefined {
  const fields = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  return fields === null ? 'must be a UTC date, YYYY-MM-DD' : calendarError(fields);
}

/** The instant a `start`/`end` text names, or a message saying what is wrong with it. */
function parseInstant(text: string): Date | string {
  const fields = INSTANT.exec(text);
  if (fields === null) return FORMAT_ERROR;
  const error = calendarError(fields);
  if (error !== undefined) return error;
  const date = new Date(fields[4] === undefined ? `${text}T00:00:00Z` : fields[7] === undefined ? `${text}Z` : text);
  return Number.isNaN(date.getTime()) ? FORMAT_ERROR : date;
}
