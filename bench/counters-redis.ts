// The Redis counters' round trip: one budgeted request costs a reservation (one EVALSHA) and a
// settlement (another, after the answer). Measured against the local Redis, beside the in-memory
// counters for scale, and with 64 reservations in flight (as at c=64), where Bun's client pipelines.
//   bun bench/counters-redis.ts        (KEYWAY_TEST_REDIS_URL, default redis://127.0.0.1:6379)

import { bench, do_not_optimize, group, run } from 'mitata';
import { RedisClient } from 'bun';
import { MemoryCounters } from '../core/counters/memory.ts';
import { RedisCounters } from '../plugins/counters-redis/counters.ts';

const url = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `keyway-bench:${crypto.randomUUID()}:`;
const clock = { now: () => Date.now() };
const redis = new RedisCounters({ url, prefix, clock, timeoutMs: 2_000 });
if (!(await redis.connect())) throw new Error(`Redis at ${url} is unreachable`);
const memory = new MemoryCounters(clock);
const expiresAt = Date.now() + 86_400_000;
const LIMIT = Number.MAX_SAFE_INTEGER;

group('reserve + settle (one budgeted request)', () => {
  bench('memory', () => {
    memory.reserve('budget', 500, LIMIT, expiresAt);
    do_not_optimize(memory.adjust('budget', -120, expiresAt));
  });
  bench('redis, one at a time', async () => {
    await redis.reserve('budget', 500, LIMIT, expiresAt);
    do_not_optimize(await redis.adjust('budget', -120, expiresAt));
  });
  bench('redis lease: reserveLease + settleLease', async () => {
    const id = crypto.randomUUID();
    await redis.reserveLease('leased', 500, LIMIT, expiresAt, { id, until: Date.now() + 65_000 });
    do_not_optimize(await redis.settleLease('leased', id, 380, expiresAt));
  });
  bench('redis, 64 in flight (per request)', async () => {
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        await redis.reserve('budget', 500, LIMIT, expiresAt);
        await redis.adjust('budget', -120, expiresAt);
      }),
    );
  });
});

group('rate-limit hit', () => {
  bench('redis hit', async () => do_not_optimize(await redis.hit('rpm', 1, 60_000)));
});

await run();
redis.close();
memory.close();
const cleaner = new RedisClient(url);
let cursor = '0';
do {
  const [next, keys] = (await cleaner.send('SCAN', [cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
  cursor = next;
  if (keys.length > 0) await cleaner.send('UNLINK', keys);
} while (cursor !== '0');
cleaner.close();
