// The counters conformance suite against the real Redis at KEYWAY_TEST_REDIS_URL (default
// 127.0.0.1:6379), each run under its own random key prefix, deleted afterwards.

import { afterAll } from 'bun:test';
import { RedisCounters } from '../../plugins/counters-redis/counters.ts';
import { describeCountersConformance } from '../conformance/counters.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const prefix = randomPrefix();
afterAll(() => deletePrefix(prefix));

describeCountersConformance('redis', async (clock) => {
  // Each test gets its own sub-prefix: the suite reuses key names across tests.
  const counters = new RedisCounters({ url: TEST_REDIS_URL, prefix: `${prefix}${crypto.randomUUID().slice(0, 8)}:`, clock, timeoutMs: 2_000 });
  await counters.connect();
  return counters;
});
