// The replay's lookup windows (core/spec/usage-keys.ts): each one account's keys, in time order, at
// most `size` of them, every key in exactly one window.

import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import type { UsageKey } from '../../core/spec/store.ts';
import { usageKeyWindows } from '../../core/spec/usage-keys.ts';

const key = fc.record({
  requestId: fc.constantFrom('req_a', 'req_b', 'req_c', 'req_d'),
  accountId: fc.constantFrom('acc_1', 'acc_2', 'acc_3'),
  createdAt: fc.integer({ min: 0, max: 10_000 }).map((offset) => new Date(Date.UTC(2026, 0, 1) + offset * 1000).toISOString()),
});

describe('usageKeyWindows', () => {
  test('windows never mix accounts, hold at most `size` keys, and cover every key within their time span', () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 60 }), fc.integer({ min: 1, max: 7 }), (keys: UsageKey[], size) => {
        const windows = usageKeyWindows(keys, size);
        for (const wanted of keys) {
          const covering = windows.filter(
            (window) =>
              window.accountId === wanted.accountId &&
              window.from <= wanted.createdAt &&
              wanted.createdAt <= window.to &&
              window.requestIds.includes(wanted.requestId),
          );
          expect(covering.length).toBeGreaterThan(0);
        }
        for (const window of windows) {
          expect(window.from <= window.to).toBe(true);
          expect(window.requestIds.length).toBeLessThanOrEqual(size);
          expect(new Set(window.requestIds).size).toBe(window.requestIds.length);
        }
        expect(windows.length).toBeLessThanOrEqual(keys.length);
      }),
    );
  });

  test('one account in time order is cut into chunks of `size`', () => {
    const keys = Array.from({ length: 5 }, (_, index) => ({ requestId: `req_${index}`, accountId: 'acc', createdAt: `2026-01-01T00:00:0${index}.000Z` }));
    expect(usageKeyWindows([...keys].reverse(), 2)).toEqual([
      { accountId: 'acc', from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T00:00:01.000Z', requestIds: ['req_0', 'req_1'] },
      { accountId: 'acc', from: '2026-01-01T00:00:02.000Z', to: '2026-01-01T00:00:03.000Z', requestIds: ['req_2', 'req_3'] },
      { accountId: 'acc', from: '2026-01-01T00:00:04.000Z', to: '2026-01-01T00:00:04.000Z', requestIds: ['req_4'] },
    ]);
  });
});
