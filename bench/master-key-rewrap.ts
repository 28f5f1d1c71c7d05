// bun bench/master-key-rewrap.ts — master-key re-wrap of 10,000 stored provider keys, online.
// Target (issue 11): it completes with no request failing and p99 added latency under 1 ms during it.
//
// Seeds 10,000 provider keys under master key v1 over 1,000 accounts (all holding the stub's key, each
// with its own data key), starts Keyway pinned to one core with v1 and v2 configured, the upstream stub
// and this load generator on the other, drives steady open-loop traffic (BENCH_RATE requests per
// second to the default account, latency measured from each request's due time) through the gateway,
// measures a baseline, then calls POST /v1/admin/master-key/rotate and keeps measuring until the re-wrap is done.
// Reports p50/p99 before and during, the difference, failures, and the rotation's counts and duration.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_OPERATOR_KEY, ROOT, startKeyway, startStub } from './load/pinned-keyway.ts';
import { LOAD_CORE, logTail, pinSelf, PROXY_CORE, stopProcess, waitForHttp } from './load/processes.ts';
import { UPSTREAM_API_KEY } from './load/requests.ts';
import { generateMasterKey } from '../plugins/crypto-local/index.ts';
import { seedTenants, startAt } from '../test/master-key/helpers.ts';

const OPERATOR_KEY = BENCH_OPERATOR_KEY;
const KEY_COUNT = Number(process.env.BENCH_KEYS ?? '10000');
// A multi-tenant install: 1,000 accounts of 10 keys; the traffic is the default account's (10 keys).
const KEYS_PER_ACCOUNT = Number(process.env.BENCH_KEYS_PER_ACCOUNT ?? '10');
const RATE = Number(process.env.BENCH_RATE ?? '500');
const BASELINE_SECONDS = Number(process.env.BENCH_BASELINE_SECONDS ?? '10');
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? '5');
const BODY = JSON.stringify({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes.' }] });

interface Sample {
  startedAt: number;
  latencyMs: number;
  ok: boolean;
}

function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] as number;
}

pinSelf();
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
const directory = mkdtempSync(join(tmpdir(), 'keyway-rewrap-bench-'));

// Seeding in this process, through the runtime (the same store and crypto backend Keyway uses).
const seeding = await startAt(directory, { KEYWAY_MASTER_KEYS: `1:${FIRST}`, KEYWAY_ADMIN_KEY: OPERATOR_KEY, KEYWAY_LOG_LEVEL: 'warn' });
const seedStarted = performance.now();
await seedTenants(seeding.runtime, KEY_COUNT, KEYS_PER_ACCOUNT, UPSTREAM_API_KEY);
console.log(`seeded ${KEY_COUNT} provider keys under v1 (${KEYS_PER_ACCOUNT} per account) in ${Math.round(performance.now() - seedStarted)} ms`);
await seeding.stop();

const stub = startStub(directory);
const keyway = startKeyway('keyway', join(ROOT, 'plugins', 'main.ts'), directory, stub.port, {
  KEYWAY_MASTER_KEYS: `1:${FIRST},2:${SECOND}`,
  ...(process.env.KEYWAY_MASTER_KEY_REWRAP_BATCH === undefined ? {} : { KEYWAY_MASTER_KEY_REWRAP_BATCH: process.env.KEYWAY_MASTER_KEY_REWRAP_BATCH }),
  ...(process.env.KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS === undefined ? {} : { KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS: process.env.KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS }),
});

try {
  const baseUrl = keyway.url;
  const notReady = await waitForHttp(`${baseUrl}/ready`, keyway.process, 60_000);
  if (notReady !== undefined) throw new Error(`${notReady}\n${logTail(keyway.process)}`);
  const headers = { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' };
  const samples: Sample[] = [];
  let running = true;
  const send = async (scheduledAt: number): Promise<void> => {
    let ok = false;
    try {
      const response = await fetch(`${baseUrl}/v1/chat/completions`, { method: 'POST', headers, body: BODY });
      await response.arrayBuffer();
      ok = response.status === 200;
    } catch {
      ok = false;
    }
    // Measured from when the request was due, not when it left: a stalled gateway cannot hide its stall.
    samples.push({ startedAt: scheduledAt, latencyMs: performance.now() - scheduledAt, ok });
  };
  const inFlight = new Set<Promise<void>>();
  // Open loop: RATE requests per second whatever the answers do, so background work shows as latency.
  const generator = (async () => {
    const origin = performance.now();
    let sent = 0;
    while (running) {
      const due = Math.floor(((performance.now() - origin) * RATE) / 1000);
      for (; sent < due; sent++) {
        const request = send(origin + (sent * 1000) / RATE);
        inFlight.add(request);
        void request.finally(() => inFlight.delete(request));
      }
      await Bun.sleep(1);
    }
    await Promise.all([...inFlight]);
  })();
  await Bun.sleep(WARMUP_SECONDS * 1000);
  const baselineStart = performance.now();
  await Bun.sleep(BASELINE_SECONDS * 1000);
  const rotationStart = performance.now();
  const started = await fetch(`${baseUrl}/v1/admin/master-key/rotate`, { method: 'POST', headers, body: JSON.stringify({ wait: false }) });
  if (started.status !== 202 && started.status !== 200) throw new Error(`rotate answered ${started.status}: ${await started.text()}`);
  let state: Record<string, unknown> = (await started.json()) as Record<string, unknown>;
  while (state.status === 'running') {
    await Bun.sleep(250);
    const status = (await (await fetch(`${baseUrl}/v1/admin/master-key/status`, { headers })).json()) as { rotation: Record<string, unknown> };
    state = status.rotation;
  }
  const rotationEnd = performance.now();
  running = false;
  await generator;
  const before = samples.filter((sample) => sample.startedAt >= baselineStart && sample.startedAt < rotationStart);
  const during = samples.filter((sample) => sample.startedAt >= rotationStart && sample.startedAt < rotationEnd);
  const failures = samples.filter((sample) => sample.startedAt >= baselineStart && !sample.ok).length;
  const stats = (list: Sample[]) => ({
    requests: list.length,
    p50: percentile(
      list.map((sample) => sample.latencyMs),
      0.5,
    ),
    p99: percentile(
      list.map((sample) => sample.latencyMs),
      0.99,
    ),
  });
  const baseline = stats(before);
  const rotating = stats(during);
  console.log(
    `rotation: ${state.status}, rewrapped ${state.rewrapped}, already current ${state.already_current}, failed ${state.failed}, ${Math.round(rotationEnd - rotationStart)} ms (server: ${state.duration_ms} ms)`,
  );
  console.log(`traffic: ${RATE} requests/s, open loop; Keyway on core ${PROXY_CORE}, stub and load generator on core ${LOAD_CORE}`);
  console.log(`before: ${baseline.requests} requests, p50 ${baseline.p50.toFixed(2)} ms, p99 ${baseline.p99.toFixed(2)} ms`);
  console.log(`during: ${rotating.requests} requests, p50 ${rotating.p50.toFixed(2)} ms, p99 ${rotating.p99.toFixed(2)} ms`);
  const slowest = [...during].sort((left, right) => right.latencyMs - left.latencyMs).slice(0, 8);
  console.log(
    `slowest during: ${slowest.map((sample) => `${sample.latencyMs.toFixed(1)} ms at +${Math.round(sample.startedAt - rotationStart)} ms`).join(', ')}`,
  );
  const added = rotating.p99 - baseline.p99;
  console.log(
    `p99 added during re-wrap: ${added.toFixed(2)} ms; failed requests: ${failures} (target: 0 failed, < 1 ms added: ${failures === 0 && added < 1 && state.failed === 0 ? 'PASS' : 'FAIL'})`,
  );
} finally {
  await stopProcess(keyway.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
