// The counters conformance suite: what every Counters implementation (core/spec/counters.ts) must
// do, whatever holds the numbers. Call it from your own test file:
//
//   describeCountersConformance('redis', (clock) => new RedisCounters(url, clock));
//
// Time is a manual clock the suite advances, so expiry is tested without sleeping: the
// implementation must read "now" from the clock it is given. The clock starts at a real epoch time
// aligned to the hour, so `expiresAt` values look like production ones and fixed windows of a minute
// start exactly at the clock's start.

import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import type { Counters } from '../../core/spec/counters.ts';
import type { Clock } from '../../core/spec/services.ts';

export type CreateCounters = (clock: Clock) => Counters | Promise<Counters>;

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

interface Subject {
  counters: Counters;
  clock: ManualClock;
  /** The clock's start: expiries are written relative to it. */
  start: number;
}

export function describeCountersConformance(name: string, create: CreateCounters): void {
  describe(`counters conformance: ${name}`, () => {
    const subject = useSubject(create);
    describeReservations(subject);
    describeAdjustments(subject);
    describeExpiry(subject);
    describeFixedWindows(subject);
    describeCooldowns(subject);
    describeKeyIndependence(subject);
    describeSeeding(subject);
  });
}

/** A fresh Counters and clock per test, closed afterwards (close is part of the contract). */
function useSubject(create: CreateCounters): () => Promise<Subject> {
  const made: Counters[] = [];
  afterEach(async () => {
    for (const counters of made.splice(0)) await counters.close?.();
  });
  return async () => {
    const start = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const clock = new ManualClock(start);
    const counters = await create(clock);
    made.push(counters);
    return { counters, clock, start };
  };
}

function describeReservations(subject: () => Promise<Subject>): void {
  test('reserve: amounts within the limit are granted, up to and including the limit', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    expect(await counters.reserve('budget', 3, 10, expiresAt)).toEqual({ ok: true, total: 3 });
    expect(await counters.reserve('budget', 7, 10, expiresAt)).toEqual({ ok: true, total: 10 });
    expect(await counters.get('budget')).toBe(10);
  });

  test('reserve: an amount that would exceed the limit is refused and the total is unchanged', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserve('budget', 8, 10, expiresAt);
    expect(await counters.reserve('budget', 3, 10, expiresAt)).toEqual({ ok: false, total: 8 });
    expect(await counters.get('budget')).toBe(8);
    // A refusal must not block a smaller amount that still fits.
    expect(await counters.reserve('budget', 2, 10, expiresAt)).toEqual({ ok: true, total: 10 });
  });

  test('reserve: an amount larger than the limit is refused on an empty counter', async () => {
    const { counters, start } = await subject();
    expect(await counters.reserve('budget', 11, 10, start + HOUR_MS)).toEqual({ ok: false, total: 0 });
    expect(await counters.get('budget')).toBe(0);
  });

  test('reserve: 100 concurrent reservations of 1 against a limit of 37 grant exactly 37', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    const results = await Promise.all(Array.from({ length: 100 }, () => Promise.resolve(counters.reserve('concurrent', 1, 37, expiresAt))));
    const granted = results.filter((result) => result.ok);
    expect(granted).toHaveLength(37);
    // Atomic reservations each see a distinct running total: 1..37, none skipped or repeated.
    expect(granted.map((result) => result.total).sort((left, right) => left - right)).toEqual(Array.from({ length: 37 }, (_, index) => index + 1));
    expect(results.filter((result) => !result.ok).every((result) => result.total === 37)).toBe(true);
    expect(await counters.get('concurrent')).toBe(37);
  });
}

function describeAdjustments(subject: () => Promise<Subject>): void {
  test('adjust: adds and subtracts, returning the new total', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    expect(await counters.adjust('spend', 4, expiresAt)).toBe(4);
    await counters.reserve('spend', 5, 100, expiresAt);
    expect(await counters.adjust('spend', -2, expiresAt)).toBe(7);
    expect(await counters.get('spend')).toBe(7);
  });

  test('adjust: settling below zero stops at zero', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserve('spend', 5, 100, expiresAt);
    expect(await counters.adjust('spend', -10, expiresAt)).toBe(0);
    expect(await counters.get('spend')).toBe(0);
    // A floor at zero means a later reservation starts from zero, not from a hidden debt.
    expect(await counters.reserve('spend', 3, 3, expiresAt)).toEqual({ ok: true, total: 3 });
  });

  test('get: an unknown key reads 0', async () => {
    const { counters } = await subject();
    expect(await counters.get('never-touched')).toBe(0);
  });
}

function describeExpiry(subject: () => Promise<Subject>): void {
  test('expiry: the counter holds until expiresAt, then reads 0 and a reservation starts fresh', async () => {
    const { counters, clock, start } = await subject();
    const expiresAt = start + MINUTE_MS;
    await counters.reserve('day', 5, 5, expiresAt);
    clock.advance(MINUTE_MS - 1);
    expect(await counters.get('day')).toBe(5);
    expect((await counters.reserve('day', 1, 5, expiresAt)).ok).toBe(false);
    clock.advance(2);
    expect(await counters.get('day')).toBe(0);
    const nextExpiry = start + 2 * MINUTE_MS;
    expect(await counters.reserve('day', 3, 5, nextExpiry)).toEqual({ ok: true, total: 3 });
  });

  test('expiry: an adjust with an earlier expiresAt does not shorten a later one', async () => {
    const { counters, clock, start } = await subject();
    await counters.reserve('month', 5, 100, start + 10 * MINUTE_MS);
    await counters.adjust('month', 1, start + MINUTE_MS);
    clock.advance(5 * MINUTE_MS);
    expect(await counters.get('month')).toBe(6);
  });

  test('expiry: an adjust with a later expiresAt extends the counter', async () => {
    const { counters, clock, start } = await subject();
    await counters.reserve('month', 5, 100, start + MINUTE_MS);
    await counters.adjust('month', -1, start + 10 * MINUTE_MS);
    clock.advance(5 * MINUTE_MS);
    expect(await counters.get('month')).toBe(4);
    clock.advance(5 * MINUTE_MS + 1);
    expect(await counters.get('month')).toBe(0);
  });
}

function describeFixedWindows(subject: () => Promise<Subject>): void {
  test('hit: counts within one fixed window, including the amount of each hit', async () => {
    const { counters, clock } = await subject();
    expect(await counters.hit('rpm', 1, MINUTE_MS)).toBe(1);
    clock.advance(MINUTE_MS / 2);
    expect(await counters.hit('rpm', 1, MINUTE_MS)).toBe(2);
    clock.advance(MINUTE_MS / 2 - 1);
    expect(await counters.hit('rpm', 3, MINUTE_MS)).toBe(5);
  });

  test('hit: the next window starts again from the new hit', async () => {
    const { counters, clock } = await subject();
    await counters.hit('rpm', 4, MINUTE_MS);
    // Whatever the alignment, a fixed window of windowMs cannot contain both now and now + windowMs.
    clock.advance(MINUTE_MS);
    expect(await counters.hit('rpm', 1, MINUTE_MS)).toBe(1);
    expect(await counters.hit('rpm', 1, MINUTE_MS)).toBe(2);
  });

  test('hit: 50 concurrent hits are all counted', async () => {
    const { counters } = await subject();
    const totals = await Promise.all(Array.from({ length: 50 }, () => Promise.resolve(counters.hit('burst', 1, MINUTE_MS))));
    expect(Math.max(...totals)).toBe(50);
    expect(new Set(totals).size).toBe(50);
  });
}

function describeCooldowns(subject: () => Promise<Subject>): void {
  test('coolDown: a key not cooling down reads undefined; a cooldown reads its end', async () => {
    const { counters, start } = await subject();
    expect(await counters.coolingUntil('key-1')).toBeUndefined();
    await counters.coolDown('key-1', start + MINUTE_MS);
    expect(await counters.coolingUntil('key-1')).toBe(start + MINUTE_MS);
  });

  test('coolDown: a later end wins, an earlier one is ignored', async () => {
    const { counters, start } = await subject();
    await counters.coolDown('key-1', start + 5 * MINUTE_MS);
    await counters.coolDown('key-1', start + MINUTE_MS);
    expect(await counters.coolingUntil('key-1')).toBe(start + 5 * MINUTE_MS);
    await counters.coolDown('key-1', start + 9 * MINUTE_MS);
    expect(await counters.coolingUntil('key-1')).toBe(start + 9 * MINUTE_MS);
  });

  test('coolDown: the cooldown ends at its time; one already past never starts', async () => {
    const { counters, clock, start } = await subject();
    await counters.coolDown('key-1', start + MINUTE_MS);
    clock.advance(MINUTE_MS - 1);
    expect(await counters.coolingUntil('key-1')).toBe(start + MINUTE_MS);
    clock.advance(2);
    expect(await counters.coolingUntil('key-1')).toBeUndefined();
    await counters.coolDown('key-2', clock.now() - 1);
    expect(await counters.coolingUntil('key-2')).toBeUndefined();
  });
}

function describeKeyIndependence(subject: () => Promise<Subject>): void {
  test('keys are independent: reserving, adjusting, hitting or cooling one leaves another alone', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserve('account:a', 9, 10, expiresAt);
    await counters.adjust('account:a', 1, expiresAt);
    await counters.hit('account:a', 7, MINUTE_MS);
    await counters.coolDown('account:a', start + MINUTE_MS);
    expect(await counters.get('account:b')).toBe(0);
    expect(await counters.coolingUntil('account:b')).toBeUndefined();
    expect(await counters.hit('account:b', 1, MINUTE_MS)).toBe(1);
    expect(await counters.reserve('account:b', 10, 10, expiresAt)).toEqual({ ok: true, total: 10 });
    expect(await counters.get('account:a')).toBe(10);
  });

  test('keys are independent: keys that differ only by a suffix or case do not share a total', async () => {
    const { counters, start } = await subject();
    const expiresAt = start + HOUR_MS;
    await counters.reserve('tenant', 5, 100, expiresAt);
    expect(await counters.get('tenant:1')).toBe(0);
    expect(await counters.get('Tenant')).toBe(0);
    expect(await counters.get('tenant')).toBe(5);
  });
}

/** Only for implementations with the optional `seed` (every built-in one): what a reservation asking for a seeded counter gets. */
function describeSeeding(subject: () => Promise<Subject>): void {
  const seeded = { seeded: true };

  test('seed: a reservation that needs a seeded counter is refused as unseeded, adding nothing, until seed marks it', async () => {
    const { counters, start } = await subject();
    if (counters.seed === undefined) return;
    const expiresAt = start + HOUR_MS;
    // Counted before the seeding (a settlement after the data went): kept, and the seed adds to it.
    await counters.adjust('budget', 2, expiresAt);
    expect(await counters.reserve('budget', 3, 100, expiresAt, seeded)).toEqual({ ok: false, total: 2, unseeded: true });
    expect(await counters.get('budget')).toBe(2);
    expect(await counters.seed([{ key: 'budget', amount: 40 }], expiresAt)).toBe(1);
    expect(await counters.reserve('budget', 3, 100, expiresAt, seeded)).toEqual({ ok: true, total: 45 });
    // Without the option, a reservation does not care.
    expect(await counters.reserve('other', 3, 100, expiresAt)).toEqual({ ok: true, total: 3 });
  });

  test('seed: a counter already seeded is left alone, so two seeders add once; a refusal on a seeded counter is a plain refusal', async () => {
    const { counters, start } = await subject();
    if (counters.seed === undefined) return;
    const expiresAt = start + HOUR_MS;
    expect(await counters.seed([{ key: 'budget', amount: 40 }], expiresAt)).toBe(1);
    expect(
      await counters.seed(
        [
          { key: 'budget', amount: 40 },
          { key: 'fresh', amount: 0 },
        ],
        expiresAt,
      ),
    ).toBe(1);
    expect(await counters.get('budget')).toBe(40);
    const refused = await counters.reserve('budget', 70, 100, expiresAt, seeded);
    expect(refused.ok).toBe(false);
    expect(refused.unseeded).toBeUndefined();
    expect(await counters.reserve('fresh', 70, 100, expiresAt, seeded)).toEqual({ ok: true, total: 70 });
  });

  test('seed: a counter that expired is not seeded any more', async () => {
    const { counters, clock, start } = await subject();
    if (counters.seed === undefined) return;
    await counters.seed([{ key: 'day', amount: 5 }], start + MINUTE_MS);
    clock.advance(MINUTE_MS);
    expect(await counters.reserve('day', 1, 100, start + 2 * MINUTE_MS, seeded)).toEqual({ ok: false, total: 0, unseeded: true });
  });

  test('seed: 20 concurrent seeders of one counter add its amount once', async () => {
    const { counters, start } = await subject();
    if (counters.seed === undefined) return;
    const expiresAt = start + HOUR_MS;
    const seeders = await Promise.all(Array.from({ length: 20 }, () => Promise.resolve(counters.seed?.([{ key: 'budget', amount: 7 }], expiresAt))));
    expect(seeders.reduce((sum: number, seeded) => sum + (seeded ?? 0), 0)).toBe(1);
    expect(await counters.get('budget')).toBe(7);
  });
}
