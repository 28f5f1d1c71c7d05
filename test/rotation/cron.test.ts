// The cron parser and next-run calculator: month ends, Feb 29, steps, ranges, lists and names, the
// day-of-month/day-of-week OR rule, DST spring-forward and fall-back in New York and Berlin, and
// expressions that must be refused.

import { describe, expect, test } from 'bun:test';
import { CronError, isValidTimeZone, nextRun, parseCron } from '../../plugins/rotation/cron.ts';

/** The next `count` runs after `from`, as ISO strings. */
function runs(expression: string, from: string, count: number, timeZone = 'UTC'): string[] {
  const cron = parseCron(expression);
  const found: string[] = [];
  let after = Date.parse(from);
  for (let index = 0; index < count; index++) {
    const next = nextRun(cron, after, timeZone);
    if (next === undefined) break;
    found.push(new Date(next).toISOString());
    after = next;
  }
  return found;
}

describe('calendar edge cases', () => {
  test('0 0 31 * * runs only in months that have a 31st', () => {
    expect(runs('0 0 31 * *', '2025-01-15T00:00:00Z', 5)).toEqual([
      '2025-01-31T00:00:00.000Z',
      '2025-03-31T00:00:00.000Z',
      '2025-05-31T00:00:00.000Z',
      '2025-07-31T00:00:00.000Z',
      '2025-08-31T00:00:00.000Z',
    ]);
  });

  test('Feb 29 runs in leap years only, and 2100 is not one', () => {
    expect(runs('0 12 29 2 *', '2025-01-01T00:00:00Z', 2)).toEqual(['2028-02-29T12:00:00.000Z', '2032-02-29T12:00:00.000Z']);
    expect(runs('0 0 29 2 *', '2096-03-01T00:00:00Z', 1)).toEqual(['2104-02-29T00:00:00.000Z']);
  });

  test('the seed monthly schedule, and a run is strictly after the given instant', () => {
    expect(runs('0 0 1 * *', '2025-12-31T23:59:00Z', 2)).toEqual(['2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z']);
    expect(runs('0 0 1 * *', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-02-01T00:00:00.000Z']);
  });
});

describe('syntax', () => {
  test('steps, ranges, lists and names', () => {
    expect(runs('*/20 8-10/2 * jan-mar MON-FRI', '2025-01-03T09:50:00Z', 5)).toEqual([
      '2025-01-03T10:00:00.000Z',
      '2025-01-03T10:20:00.000Z',
      '2025-01-03T10:40:00.000Z',
      '2025-01-06T08:00:00.000Z',
      '2025-01-06T08:20:00.000Z',
    ]);
    expect(runs('5,35 14 * * 7', '2025-01-01T00:00:00Z', 3)).toEqual(['2025-01-05T14:05:00.000Z', '2025-01-05T14:35:00.000Z', '2025-01-12T14:05:00.000Z']);
    expect(runs('10/25 0 1 1 *', '2025-01-01T00:00:00Z', 3)).toEqual(['2025-01-01T00:10:00.000Z', '2025-01-01T00:35:00.000Z', '2026-01-01T00:10:00.000Z']);
    expect(runs('@weekly', '2025-01-01T00:00:00Z', 1)).toEqual(['2025-01-05T00:00:00.000Z']);
  });

  test('day of month OR day of week when both are restricted (Vixie), AND when one is *', () => {
    // 13th of the month or any Friday.
    expect(runs('0 0 13 * fri', '2025-06-01T00:00:00Z', 4)).toEqual([
      '2025-06-06T00:00:00.000Z',
      '2025-06-13T00:00:00.000Z',
      '2025-06-20T00:00:00.000Z',
      '2025-06-27T00:00:00.000Z',
    ]);
    expect(runs('0 0 * * fri', '2025-06-01T00:00:00Z', 1)).toEqual(['2025-06-06T00:00:00.000Z']);
    expect(runs('0 0 13 * *', '2025-06-01T00:00:00Z', 1)).toEqual(['2025-06-13T00:00:00.000Z']);
  });

  test('invalid expressions are refused with a reason', () => {
    for (const bad of [
      '',
      '* * * *',
      '* * * * * *',
      '60 * * * *',
      '* 24 * * *',
      '* * 0 * *',
      '* * * 13 *',
      '* * * * 8',
      '5-1 * * * *',
      '*/0 * * * *',
      'a b c d e',
      '1,,2 * * * *',
      '1-2-3 * * * *',
      '0 0 30 2 *',
      '0 0 31 4,6 *',
    ]) {
      expect(() => parseCron(bad)).toThrow(CronError);
    }
  });

  test('time zones are checked against Intl', () => {
    expect(isValidTimeZone('America/New_York')).toBe(true);
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});

describe('daylight saving time', () => {
  test('America/New_York spring forward: 02:30 does not exist on 2025-03-09 and runs at 03:30 EDT', () => {
    expect(runs('30 2 * * *', '2025-03-08T12:00:00Z', 3, 'America/New_York')).toEqual([
      '2025-03-09T07:30:00.000Z',
      '2025-03-10T06:30:00.000Z',
      '2025-03-11T06:30:00.000Z',
    ]);
  });

  test('America/New_York fall back: 01:30 happens twice on 2025-11-02 and runs once, the first time', () => {
    expect(runs('30 1 * * *', '2025-11-01T12:00:00Z', 3, 'America/New_York')).toEqual([
      '2025-11-02T05:30:00.000Z',
      '2025-11-03T06:30:00.000Z',
      '2025-11-04T06:30:00.000Z',
    ]);
    // Hourly: the repeated 01:00 runs once.
    expect(runs('0 * * * *', '2025-11-02T03:30:00Z', 4, 'America/New_York')).toEqual([
      '2025-11-02T04:00:00.000Z',
      '2025-11-02T05:00:00.000Z',
      '2025-11-02T07:00:00.000Z',
      '2025-11-02T08:00:00.000Z',
    ]);
  });

  test('Europe/Berlin spring forward and fall back', () => {
    expect(runs('30 2 * * *', '2025-03-29T12:00:00Z', 2, 'Europe/Berlin')).toEqual(['2025-03-30T01:30:00.000Z', '2025-03-31T00:30:00.000Z']);
    expect(runs('30 2 * * *', '2025-10-25T12:00:00Z', 2, 'Europe/Berlin')).toEqual(['2025-10-26T00:30:00.000Z', '2025-10-27T01:30:00.000Z']);
    // Midnight local on the first of the month, across the change.
    expect(runs('0 0 1 * *', '2025-03-15T00:00:00Z', 2, 'Europe/Berlin')).toEqual(['2025-03-31T22:00:00.000Z', '2025-04-30T22:00:00.000Z']);
  });
});
