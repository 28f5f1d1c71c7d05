// A five-field cron expression (minute hour day-of-month month day-of-week) and the next time it is
// due in an IANA time zone, computed with Intl only. Rules (docs/key-lifecycle.md, "Schedules"):
// - `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from a to the field's end), lists
//   `a,b`, month and weekday names (`JAN`, `mon`), weekday 7 = Sunday; `@yearly`, `@monthly`,
//   `@weekly`, `@daily`, `@hourly`.
// - Day of month and day of week as Vixie cron: when both are restricted (neither starts with `*`), a
//   day matches when EITHER does; otherwise both must.
// - A wall time the clocks skip (spring forward) runs shifted by the gap (02:30 → 03:30), and a wall
//   time that happens twice (fall back) runs once, at its first occurrence: Temporal's `compatible`.
// - A day that does not exist in a month (`0 0 31 * *` in April) is simply not a day: that month has no run.

export interface CronExpression {
  source: string;
  minutes: readonly number[];
  hours: readonly number[];
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  daysOfWeek: ReadonlySet<number>;
  dayOfMonthStar: boolean;
  dayOfWeekStar: boolean;
}

export class CronError extends Error {}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** The first name's number (months start at 1). */
  nameBase?: number;
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, nameBase: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAY_NAMES, nameBase: 0 },
];

function parseValue(text: string, field: FieldSpec): number {
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named >= 0) return named + (field.nameBase ?? 0);
  if (!/^\d{1,2}$/.test(text)) throw new CronError(`'${text}' is not a valid ${field.name}`);
  const value = Number(text);
  if (value < field.min || value > field.max) throw new CronError(`${field.name} ${value} is outside ${field.min}-${field.max}`);
  return value;
}

function parseField(text: string, field: FieldSpec): Set<number> {
  const values = new Set<number>();
  for (const item of text.split(',')) {
    if (item === '') throw new CronError(`empty item in the ${field.name} field`);
    const [range = '', stepText, extra] = item.split('/');
    if (extra !== undefined) throw new CronError(`'${item}' has more than one step`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d{1,2}$/.test(stepText) || Number(stepText) === 0) throw new CronError(`'${stepText}' is not a valid step in the ${field.name} field`);
      step = Number(stepText);
    }
    let low: number;
    let high: number;
    if (range === '*') [low, high] = [field.min, field.max];
    else if (range.includes('-')) {
      const [from = '', to = '', more] = range.split('-');
      if (more !== undefined) throw new CronError(`'${range}' is not a valid range`);
      [low, high] = [parseValue(from, field), parseValue(to, field)];
      if (low > high) throw new CronError(`the range ${range} in the ${field.name} field runs backwards`);
    } else {
      low = parseValue(range, field);
      // `5/15` means from 5 to the field's end, every 15 (Vixie); a bare value is itself.
      high = stepText === undefined ? low : field.max;
    }
    for (let value = low; value <= high; value += step) values.add(value);
  }
  return values;
}

/** Parses an expression; throws CronError with a message fit for a 400 answer. */
export function parseCron(expression: string): CronExpression {
  const trimmed = expression.trim();
  const expanded = MACROS[trimmed.toLowerCase()] ?? trimmed;
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5) throw new CronError(`a schedule has 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`);
  const sets = parts.map((part, index) => parseField(part, FIELDS[index] as FieldSpec));
  const daysOfWeek = sets[4] as Set<number>;
  if (daysOfWeek.delete(7)) daysOfWeek.add(0);
  const cron: CronExpression = {
    source: trimmed,
    minutes: [...(sets[0] as Set<number>)].sort((a, b) => a - b),
    hours: [...(sets[1] as Set<number>)].sort((a, b) => a - b),
    daysOfMonth: sets[2] as Set<number>,
    months: sets[3] as Set<number>,
    daysOfWeek,
    dayOfMonthStar: (parts[2] as string).startsWith('*'),
    dayOfWeekStar: (parts[4] as string).startsWith('*'),
  };
  // A day-of-month that no month listed has (`0 0 30 2 *`) never runs: refuse it now.
  const possible = [...cron.months].some((month) => [...cron.daysOfMonth].some((day) => day <= daysInMonth(2024, month)));
  if (!possible && cron.dayOfWeekStar) throw new CronError('no month in this schedule has the days it names: it would never run');
  return cron;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True when Intl knows the zone (`America/New_York`, `UTC`). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

function wallTimeAt(instant: number, timeZone: string): WallTime {
  const values: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(instant))) if (part.type !== 'literal') values[part.type] = Number(part.value);
  return { year: values.year ?? 0, month: values.month ?? 1, day: values.day ?? 1, hour: values.hour ?? 0, minute: values.minute ?? 0 };
}

const asUtc = (wall: WallTime): number => Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute);

/** The zone's offset from UTC at an instant, in milliseconds (whole minutes). */
function offsetAt(instant: number, timeZone: string): number {
  const floored = Math.floor(instant / 60_000) * 60_000;
  return asUtc(wallTimeAt(floored, timeZone)) - floored;
}

/** The instant a wall time names: the earlier of two (fall back), or shifted by the gap (spring forward). */
export function instantOf(wall: WallTime, timeZone: string): number {
  const naive = asUtc(wall);
  const before = offsetAt(naive - 86_400_000, timeZone);
  const after = offsetAt(naive + 86_400_000, timeZone);
  const candidates = [naive - before, naive - after].filter((instant) => asUtc(wallTimeAt(instant, timeZone)) === naive).sort((a, b) => a - b);
  if (candidates[0] !== undefined) return candidates[0];
  // Skipped wall time: read with the offset in force before the jump, it lands the gap's length later.
  return naive - before;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function dayMatches(cron: CronExpression, year: number, month: number, day: number): boolean {
  if (!cron.months.has(month)) return false;
  const byMonthDay = cron.daysOfMonth.has(day);
  const byWeekDay = cron.daysOfWeek.has(new Date(Date.UTC(year, month - 1, day)).getUTCDay());
  if (cron.dayOfMonthStar || cron.dayOfWeekStar) return byMonthDay && byWeekDay;
  return byMonthDay || byWeekDay;
}

/** 28 years: the Gregorian weekday cycle, so any schedule that can ever run is found. */
const SEARCH_DAYS = 28 * 366;

/** The first instant strictly after `after` at which the schedule is due, or undefined when it never is. */
export function nextRun(cron: CronExpression, after: number, timeZone = 'UTC'): number | undefined {
  const start = wallTimeAt(after + 60_000, timeZone);
  const cursor = new Date(Date.UTC(start.year, start.month - 1, start.day));
  for (let dayIndex = 0; dayIndex < SEARCH_DAYS; dayIndex++, cursor.setUTCDate(cursor.getUTCDate() + 1)) {
    const year = cursor.getUTCFullYear();
    const month = cursor.getUTCMonth() + 1;
    const day = cursor.getUTCDate();
    if (!dayMatches(cron, year, month, day)) continue;
    const first = dayIndex === 0;
    for (const hour of cron.hours) {
      if (first && hour < start.hour) continue;
      for (const minute of cron.minutes) {
        if (first && hour === start.hour && minute < start.minute) continue;
        const instant = instantOf({ year, month, day, hour, minute }, timeZone);
        if (instant > after) return instant;
      }
    }
  }
  return undefined;
}
