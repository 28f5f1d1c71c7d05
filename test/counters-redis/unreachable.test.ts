// RedisCounters with no Redis to talk to: budget operations reject with RedisUnavailableError (the
// cost cap turns that into a 503), while rate-limit windows and cooldowns count in this process's
// memory, per instance, until Redis returns. Nothing hangs: the connection refusal comes at once.

import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { RedisCounters, RedisUnavailableError } from '../../plugins/counters-redis/counters.ts';

const made: RedisCounters[] = [];
afterEach(() => {
  for (const counters of made.splice(0)) counters.close();
});

function unreachable(): { counters: RedisCounters; clock: ManualClock } {
  const clock = new ManualClock(Date.parse('2026-12-05T10:00:00.000Z'));
  // Port 1 on loopback: nothing listens, the connection is refused. Credentials in the URL must never surface.
  const counters = new RedisCounters({ url: 'redis://user:s3cret-password@127.0.0.1:1', prefix: 'keyway-test:', clock, timeoutMs: 500, retryMs: 0 });
  made.push(counters);
  return { counters, clock };
}

describe('counters-redis with Redis unreachable', () => {
  test('connect reports false; reserve, adjust and get reject with RedisUnavailableError naming the host, not the password', async () => {
    const { counters } = unreachable();
    expect(await counters.connect()).toBe(false);
    for (const attempt of [
      counters.reserve('budget', 1, 10, Date.now() + 60_000),
      counters.adjust('budget', -1, Date.now() + 60_000),
      counters.get('budget'),
    ]) {
      const error = await attempt.then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect((error as Error).message).toBe('Redis at redis://127.0.0.1:1 is unreachable');
      expect((error as Error).message).not.toContain('s3cret');
    }
  });

  test('hit counts in fixed windows in local memory instead', async () => {
    const { counters, clock } = unreachable();
    expect(await counters.hit('rpm', 1, 60_000)).toBe(1);
    expect(await counters.hit('rpm', 2, 60_000)).toBe(3);
    expect(await counters.hit('other', 1, 60_000)).toBe(1);
    clock.advance(60_000);
    expect(await counters.hit('rpm', 1, 60_000)).toBe(1);
  });

  test('coolDown and coolingUntil work locally, a later end winning', async () => {
    const { counters, clock } = unreachable();
    const now = clock.now();
    expect(await counters.coolingUntil('key-1')).toBeUndefined();
    await counters.coolDown('key-1', now + 5_000);
    await counters.coolDown('key-1', now + 1_000);
    expect(await counters.coolingUntil('key-1')).toBe(now + 5_000);
    clock.advance(5_000);
    expect(await counters.coolingUntil('key-1')).toBeUndefined();
  });
});
