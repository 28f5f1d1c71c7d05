// bun bench/counters-redis-leases.ts — what budgets cost Redis: 64 requests in flight (as at c=64),
// each reserving a lease on one team's counter, holding it ~1 ms (the upstream call) and settling it,
// for SECONDS (default 5); prints the requests, Redis's own CPU per request (from /proc of the local
// redis-server) and its command statistics. Redis is single-threaded and shared by every gateway, so
// its CPU per budgeted request bounds the whole cluster's budgeted request rate.
//   KEYWAY_TEST_REDIS_URL (default redis://127.0.0.1:6379) must be a Redis on this machine.

import { readFileSync } from 'node:fs';
import { RedisClient } from 'bun';
import { RedisCounters } from '../plugins/counters-redis/counters.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from '../test/counters-redis/redis.ts';

const SECONDS = Number(process.env.SECONDS ?? 5);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 64);
const prefix = randomPrefix();
const counters = new RedisCounters({ url: TEST_REDIS_URL, prefix, clock: { now: () => Date.now() }, timeoutMs: 2_000 });
if (!(await counters.connect())) throw new Error(`Redis at ${TEST_REDIS_URL} is unreachable`);
const admin = new RedisClient(TEST_REDIS_URL);
const redisPid = Bun.spawnSync(['pgrep', '-o', 'redis-server']).stdout.toString().trim();
if (redisPid === '') throw new Error('no local redis-server process to read the CPU of');
const ticks = (): number => {
  const fields = readFileSync(`/proc/${redisPid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // utime and stime, fields 14 and 15 of stat (11 and 12 after the command's closing parenthesis).
  return Number(fields[11]) + Number(fields[12]);
};
const TICK_US = 1e6 / 100;
const expiresAt = Date.now() + 86_400_000;
const key = 'budget:account:team:openai:2026-12-06';

let served = 0;
let stopping = false;
async function request(): Promise<void> {
  while (!stopping) {
    const id = crypto.randomUUID();
    const amount = 2_000 + Math.floor(Math.random() * 1_000);
    const reservation = await counters.reserveLease(key, amount, Number.MAX_SAFE_INTEGER, expiresAt, { id, until: Date.now() + 65_000 });
    if (!reservation.ok) throw new Error('a reservation was refused under an unbounded limit');
    await Bun.sleep(1);
    await counters.settleLease(key, id, 300 + Math.floor(Math.random() * 100), expiresAt);
    served++;
  }
}

async function run(seconds: number): Promise<number> {
  served = 0;
  stopping = false;
  const workers = Array.from({ length: IN_FLIGHT }, request);
  await Bun.sleep(seconds * 1000);
  stopping = true;
  await Promise.all(workers);
  return served;
}

try {
  await run(1);
  await admin.send('CONFIG', ['RESETSTAT']);
  const before = ticks();
  const started = performance.now();
  const requests = await run(SECONDS);
  const elapsed = (performance.now() - started) / 1000;
  const cpu = ((ticks() - before) * TICK_US) / requests;
  console.log(`${requests} budgeted requests, ${Math.round(requests / elapsed)}/s, ${IN_FLIGHT} in flight: Redis CPU ${cpu.toFixed(2)} µs per request`);
  const stats = String(await admin.send('INFO', ['commandstats']));
  for (const line of stats.split('\n')) {
    const match = /cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match === null) continue;
    const calls = Number(match[2]);
    console.log(`  ${match[1]}: ${(calls / requests).toFixed(3)} calls per request, ${(Number(match[3]) / calls).toFixed(2)} µs per call`);
  }
} finally {
  counters.close();
  admin.close();
  await deletePrefix(prefix);
}
