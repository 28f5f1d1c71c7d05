// The anomaly rule's statistics (plugins/alerts/anomaly.ts) and the alert periods (periods.ts), on
// hand-made numbers: what fires, what does not, and why.

import { describe, expect, test } from 'bun:test';
import { judgeHour, median, type HourSample } from '../../plugins/alerts/anomaly.ts';
import { costPeriodWindow, hourWindow } from '../../plugins/alerts/periods.ts';
import { ANOMALY_METRICS } from '../../plugins/alerts/schema.ts';

const day = (requests: number, errors: number, spendUsd: number): HourSample => ({ requests, errors, spendUsd });
const history: HourSample[] = [100, 96, 104, 99, 101, 95, 108, 102, 97, 103, 100, 98, 105, 94].map((requests) => day(requests, 1, requests * 0.02));
const metrics = [...ANOMALY_METRICS];

describe('judgeHour', () => {
  test('an ordinary hour is quiet at every sensitivity', () => {
    for (const sensitivity of ['low', 'medium', 'high'] as const) expect(judgeHour(day(110, 2, 2.3), history, sensitivity, metrics)).toEqual([]);
  });

  test('three times the usual traffic fires on requests and spend, naming the usual value', () => {
    const verdicts = judgeHour(day(300, 3, 6), history, 'medium', metrics);
    expect(verdicts.map((verdict) => verdict.metric).sort()).toEqual(['requests', 'spend']);
    expect(verdicts.find((verdict) => verdict.metric === 'requests')?.median).toBe(100);
  });

  test('an error rate of 20 % against the usual 1 % fires; only for error_rate when asked for it alone', () => {
    expect(judgeHour(day(100, 20, 2), history, 'low', ['error_rate']).map((verdict) => verdict.metric)).toEqual(['error_rate']);
    expect(judgeHour(day(100, 20, 2), history, 'low', ['spend', 'requests'])).toEqual([]);
  });

  test('drops never fire, small excesses never fire, and under 7 days of history nothing does', () => {
    expect(judgeHour(day(0, 0, 0), history, 'high', metrics)).toEqual([]);
    // From 0.4 requests an hour to 9: far in spreads, but under the 10-request floor.
    const quiet = [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0].map((requests) => day(requests, 0, requests * 0.02));
    expect(judgeHour(day(9, 0, 0.18), quiet, 'high', metrics)).toEqual([]);
    expect(judgeHour(day(1000, 500, 50), history.slice(0, 6), 'high', metrics)).toEqual([]);
  });

  test('the median resists one past incident in the baseline', () => {
    const withIncident = [...history.slice(1), day(5000, 2500, 100)];
    expect(median(withIncident.map((sample) => sample.requests))).toBeLessThan(110);
    expect(judgeHour(day(300, 3, 6), withIncident, 'medium', ['requests'])).toHaveLength(1);
  });
});

describe('periods', () => {
  const at = Date.UTC(2026, 11, 5, 14, 30); // Saturday 5 December 2026, 14:30 UTC
  test('daily, weekly (ISO, from Monday) and monthly keys and bounds in UTC', () => {
    expect(costPeriodWindow('daily', at)).toMatchObject({ key: '2026-12-05', start: new Date('2026-12-05T00:00:00Z') });
    expect(costPeriodWindow('weekly', at)).toMatchObject({ key: '2026-W49', start: new Date('2026-11-30T00:00:00Z'), end: new Date('2026-12-07T00:00:00Z') });
    expect(costPeriodWindow('monthly', at)).toMatchObject({ key: '2026-12', end: new Date('2027-01-01T00:00:00Z') });
    expect(costPeriodWindow('weekly', Date.UTC(2027, 0, 1))).toMatchObject({ key: '2026-W53' });
    expect(hourWindow(at).key).toBe('2026-12-05T14');
  });
});
