// The Redis cluster bus when Redis goes away under one member (a proxy in front of the test Redis is
// cut): publishing fails softly, leases are refused (nobody can tell who holds them), and once Redis
// is back the member listens again and runs its resume listeners once (what it missed is caught up
// by a full reload), then hears messages as before.

import { afterAll, expect, test } from 'bun:test';
import { RedisClusterBus } from '../../plugins/counters-redis/cluster.ts';
import { startRedisProxy } from './proxy.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from './redis.ts';

const prefix = randomPrefix();
const target = new URL(TEST_REDIS_URL);
const proxy = startRedisProxy({ hostname: target.hostname, port: Number(target.port || 6379) });
const logged: string[] = [];
const log = {
  warn: (_: Record<string, unknown>, message: string) => void logged.push(message),
  error: (_: Record<string, unknown>, message: string) => void logged.push(message),
};
const cut = new RedisClusterBus({ url: proxy.url, prefix, instanceId: 'inst_cut', timeoutMs: 300, retryMs: 200, pingEveryMs: 200, log });
const direct = new RedisClusterBus({ url: TEST_REDIS_URL, prefix, instanceId: 'inst_direct', timeoutMs: 2_000 });

afterAll(async () => {
  await cut.close();
  await direct.close();
  proxy.cut();
  await deletePrefix(prefix);
});

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await Bun.sleep(20);
  }
}

test('an outage: publish fails softly, leases are refused; back, the member re-subscribes, resumes once and hears again', async () => {
  expect(await cut.start()).toBe(true);
  expect(await direct.start()).toBe(true);
  const heard: string[] = [];
  let resumed = 0;
  cut.subscribe('config', (message) => heard.push(message));
  cut.onResume(() => resumed++);
  for (let attempt = 0; heard.length === 0; attempt++) {
    if (attempt > 100) throw new Error('the subscription was never in place');
    await direct.publish('config', `hello ${attempt}`);
    await Bun.sleep(20);
  }

  proxy.cut();
  await until(() => logged.includes('Redis unreachable: not hearing the other instances until it returns'), 3_000, 'noticing the cut');
  await direct.publish('config', 'missed');
  // Neither throws: a management write is in force here whatever the bus does.
  await cut.publish('config', 'unsent');
  expect(await cut.acquireLease('job', 10_000)).toBe(false);
  expect(resumed).toBe(0);

  proxy.restore();
  await until(() => resumed === 1, 5_000, 'resuming');
  await direct.publish('config', 'after');
  await until(() => heard.includes('after'), 3_000, 'hearing a message after the outage');
  expect(heard).not.toContain('missed');
  expect(resumed).toBe(1);
  // Commands fail at once for retryMs after a failure, then reconnect on use.
  let holding = false;
  for (const started = Date.now(); !holding && Date.now() - started < 3_000; await Bun.sleep(50)) holding = await cut.acquireLease('job', 10_000);
  expect(holding).toBe(true);
  expect(await direct.acquireLease('job', 10_000)).toBe(false);
}, 20_000);

// QA18 multi #5: every graceful stop logged "Redis unreachable: not hearing the other instances" at
// error (once per worker), the line docs/deployment.md tells operators to alert on: the subscriber
// connection the stop closes itself was taken for a lost one.
test('closing the bus (a graceful stop) logs no outage', async () => {
  const quiet: string[] = [];
  const record = (_: Record<string, unknown>, message: string) => void quiet.push(message);
  const bus = new RedisClusterBus({ url: TEST_REDIS_URL, prefix, instanceId: 'inst_closing', timeoutMs: 2_000, log: { warn: record, error: record } });
  expect(await bus.start()).toBe(true);
  const heard: string[] = [];
  bus.subscribe('config', (message) => heard.push(message));
  for (let attempt = 0; heard.length === 0; attempt++) {
    if (attempt > 100) throw new Error('the subscription was never in place');
    await direct.publish('config', `closing ${attempt}`);
    await Bun.sleep(20);
  }
  await bus.close();
  await Bun.sleep(300);
  expect(quiet).toEqual([]);
});
