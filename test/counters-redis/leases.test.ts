// Reservations as leases (the optional lease methods of core/spec/counters.ts) on the real Redis: a
// lease counts in the total while live, lapses at its end unless renewed (a crashed process's
// reservations free themselves), and settling a lease swaps its amount for the real spend.

import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { RedisClient } from 'bun';
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

async function subject(): Promise<{ counters: RedisCounters; clock: ManualClock; start: number; keyPrefix: string }> {
  const start = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const clock = new ManualClock(start);
  const keyPrefix = `${prefix}${crypto.randomUUID().slice(0, 8)}:`;
  const counters = new RedisCounters({ url: TEST_REDIS_URL, prefix: keyPrefix, clock, timeoutMs: 2_000 });
  made.push(counters);
  expect(await counters.connect()).toBe(true);
  return { counters, clock, start, keyPrefix };
}

/** Runs raw commands against the test Redis (to read or plant what the scripts keep). */
async function raw<T>(use: (client: RedisClient) => Promise<T>): Promise<T> {
  const client = new RedisClient(TEST_REDIS_URL);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

describe('counters-redis leases', () => {
  test('a live lease counts against the limit; once it lapses its amount is free again', async () => {
    const { counters, clock, start } = await subject();
    const expiresAt = start + HOUR_MS;
    expect(await counters.reserveLease('budget', 6, 10, expiresAt, { id: 'crashed', until: start + 5_000 })).toEqual({ ok: true, total: 6 });
    // The refusal says how much of the total is only in flight (every instance's live leases).
    expect(await counters.reserveLease('budget', 6, 10, expiresAt, { id: 'second', until: start + 5_000 })).toEqual({ ok: false, total: 6, leased: 6 });
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

  test('the counter keeps its total, end and leased part; each lease is one member of the lease set that names its amount', async () => {
    const { counters, start, keyPrefix } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserveLease('budget', 1_250, 100_000, expiresAt, { id: 'first', until: start + 5_000 });
    await counters.reserveLease('budget', 40, 100_000, expiresAt, { id: 'second', until: start + 6_000 });
    const [fields, members] = await raw((client) =>
      Promise.all([client.send('HGETALL', [`${keyPrefix}c:budget`]), client.send('ZRANGE', [`${keyPrefix}l:budget`, '0', '-1', 'WITHSCORES'])]),
    );
    expect(fields).toEqual({ v: '1290', e: String(expiresAt), r: '1290' });
    expect(members).toEqual([
      ['first:1250', start + 5_000],
      ['second:40', start + 6_000],
    ]);
    expect(await counters.settleLease('budget', 'first', 300, expiresAt)).toBe(340);
    expect(await raw((client) => client.send('ZRANGE', [`${keyPrefix}l:budget`, '0', '-1']))).toEqual(['second:40']);
  });

  test('a lease set whose counter is gone (Redis lost or evicted it) is dropped: its leases settle as spend alone', async () => {
    const { counters, start, keyPrefix } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserveLease('budget', 500, 1_000, expiresAt, { id: 'before', until: start + 60_000 });
    await raw((client) => client.send('DEL', [`${keyPrefix}c:budget`]));
    // The reservation's amount left with the counter: settling it must not take it out of what comes next.
    expect(await counters.settleLease('budget', 'before', 30, expiresAt)).toBe(30);
    expect(await raw((client) => client.send('EXISTS', [`${keyPrefix}l:budget`]))).toBe(0);
    expect(await counters.reserveLease('budget', 900, 1_000, expiresAt, { id: 'after', until: start + 60_000 })).toEqual({ ok: true, total: 930 });
  });

  test('a refusal that takes lapsed leases out writes the smaller total, though it adds nothing', async () => {
    const { counters, clock, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.adjust('plain', 6, expiresAt);
    await counters.reserveLease('plain', 3, 10, expiresAt, { id: 'lapsing', until: start + 1_000 });
    clock.advance(1_000);
    // Refused even without the lapsed lease (6 + 5 > 10): the lease still leaves the total for good.
    expect(await counters.reserve('plain', 5, 10, expiresAt)).toEqual({ ok: false, total: 6 });
    expect(await counters.reserve('plain', 4, 10, expiresAt)).toEqual({ ok: true, total: 10 });
  });

  test('one batch of many leases on one counter: each answer in order, a lease settled in its own batch, an unknown lease adds its spend alone', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    const granted = Array.from({ length: 40 }, (_, index) =>
      counters.reserveLease('batch', 10, 300, expiresAt, { id: `lease-${index}`, until: start + 60_000 }),
    );
    // Asked in the same turn as its reservation, so both travel in one call: the lease is never written.
    const settledAtOnce = counters.settleLease('batch', 'lease-0', 4, expiresAt);
    const results = await Promise.all(granted);
    expect(results.map((result) => result.ok)).toEqual(Array.from({ length: 40 }, (_, index) => index < 30));
    expect(results.map((result) => result.total)).toEqual(Array.from({ length: 40 }, (_, index) => Math.min(10 * (index + 1), 300)));
    // lease-0 swapped for its spend: 300 - 10 + 4.
    expect(await settledAtOnce).toBe(294);
    expect(await counters.settleLease('batch', 'never-reserved', 7, expiresAt)).toBe(301);
    const settlements = await Promise.all(Array.from({ length: 29 }, (_, index) => counters.settleLease('batch', `lease-${index + 1}`, 1, expiresAt)));
    expect(settlements.at(-1)).toBe(4 + 7 + 29);
    expect(await counters.get('batch')).toBe(40);
  });

  test('a counter key or lease id with whitespace is refused before anything reaches Redis, and the next good one still works', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await expect(counters.reserveLease('budget', 1, 10, expiresAt, { id: 'two words', until: start + 5_000 })).rejects.toThrow('whitespace');
    await expect(counters.reserveLease('a budget', 1, 10, expiresAt, { id: 'one', until: start + 5_000 })).rejects.toThrow('whitespace');
    await expect(counters.settleLease('a\nbudget', 'one', 1, expiresAt)).rejects.toThrow('whitespace');
    expect(await counters.reserveLease('budget', 1, 10, expiresAt, { id: 'one', until: start + 5_000 })).toEqual({ ok: true, total: 1 });
    expect(await counters.settleLease('budget', 'one', 3, expiresAt)).toBe(3);
  });
});
