// The Redis cluster bus (plugins/counters-redis/cluster.ts) through the cluster conformance suite:
// three members, each with its own connections, on the real Redis at KEYWAY_TEST_REDIS_URL under a
// random prefix per test (so no test hears another's messages), deleted afterwards.

import { afterAll } from 'bun:test';
import { RedisClusterBus } from '../../plugins/counters-redis/cluster.ts';
import { describeClusterConformance } from '../conformance/cluster.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const prefix = randomPrefix();
afterAll(() => deletePrefix(prefix));

describeClusterConformance('redis', async () => {
  const cluster = `${prefix}${crypto.randomUUID().slice(0, 8)}:`;
  return Promise.all(
    ['a', 'b', 'c'].map(async (name) => {
      const bus = new RedisClusterBus({
        url: TEST_REDIS_URL,
        prefix: cluster,
        instanceId: `inst_${name}_${crypto.randomUUID().slice(0, 8)}`,
        timeoutMs: 2_000,
      });
      await bus.start();
      return bus;
    }),
  );
});
