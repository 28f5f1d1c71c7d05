// Reservations as leases (the optional lease methods of core/spec/counters.ts) on the real Redis: a
// lease counts in the total while live, lapses at its end unless renewed (a crashed process's
// reservations free themselves), and settling a lease swaps its amount for the real spend.

import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { RedisCounters } from '../../plugins/counters-redis/counters.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const prefix = randomPrefix();
const made: RedisCounters[] = [];
afterEach(() => {
  for (const counters of made.splice(0)) counters.close();
});
afterAll(() => deletePrefix(prefix));

const HOUR_MS = 3_600_000;

async function subject(): Promise<{ counters: RedisCounters; clock: ManualClock; start: number }> {
  const start = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const clock = new ManualClock(start);
  const counters = new RedisCounters({ url: TEST_REDIS_URL, prefix: `${prefix}${crypto.randomUUID().slice(0, 8)}:`, clock, timeoutMs: 2_000 });
  made.push(counters);
  expect(await counters.connect()).toBe(true);
  return { counters, clock, start };
}

describe('counters-redis leases', () => {
  test('a live lease counts against the limit; once it lapses its amount is free again', async () => {
    const { counters, clock, start } = await subject();
    const expiresAt = start + HOUR_MS;
    expect(await counters.reserveLease('budget', 6, 10, expiresAt, { id: 'crashed', until: start + 5_000 })).toEqual({ ok: true, total: 6 });
    expect(await counters.reserveLease('budget', 6, 10, expiresAt, { id: 'second', until: start + 5_000 })).toEqual({ ok: false, total: 6 });
    clock.advance(4_999);
    expect(await counters.get('budget')).toBe(6);
    // The process that held "crashed" never renewed nor settled it: it lapses at its end.
    clock.advance(1);
    expect(await counters.get('budget')).toBe(0);
    expect(await counters.reserveLease('budget', 6, 10, expiresAt, { id: 'second', until: start + 10_000 })).toEqual({ ok: true, total: 6 });
  });

  test('renewing keeps a lease alive; a lease that already lapsed is not revived', async () => {
    const { counters, clock, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserveLease('budget', 3, 10, expiresAt, { id: 'live', until: start + 5_000 });
    await counters.reserveLease('budget', 4, 10, expiresAt, { id: 'lapsing', until: start + 2_000 });
    clock.advance(3_000);
    await counters.renewLeases(
      [
        { key: 'budget', id: 'live' },
        { key: 'budget', id: 'lapsing' },
      ],
      start + 8_000,
    );
    clock.advance(4_000);
    expect(await counters.get('budget')).toBe(3);
    clock.advance(1_000);
    expect(await counters.get('budget')).toBe(0);
  });

  test('settling a lease replaces its amount by the spend; settling one that lapsed adds only the spend', async () => {
    const { counters, clock, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserveLease('budget', 8, 20, expiresAt, { id: 'a', until: start + 5_000 });
    await counters.reserveLease('budget', 8, 20, expiresAt, { id: 'b', until: start + 1_000 });
    expect(await counters.settleLease('budget', 'a', 2, expiresAt)).toBe(10);
    // Settling twice never gives the amount back twice.
    expect(await counters.settleLease('budget', 'a', 0, expiresAt)).toBe(10);
    clock.advance(2_000);
    expect(await counters.get('budget')).toBe(2);
    expect(await counters.settleLease('budget', 'b', 5, expiresAt)).toBe(7);
    // Plain reservations and leases share one total.
    expect(await counters.reserve('budget', 13, 20, expiresAt)).toEqual({ ok: true, total: 20 });
  });

  test('100 concurrent leases of 1 against a limit of 37 grant exactly 37', async () => {
    const { counters, start } = await subject();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, index) => counters.reserveLease('race', 1, 37, start + HOUR_MS, { id: `lease-${index}`, until: start + 60_000 })),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(37);
    expect(await counters.get('race')).toBe(37);
  });
});
