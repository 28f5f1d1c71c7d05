// bun bench/upstream-client-keyway.ts — issue 15: Keyway with Bun's fetch against Keyway with its own
// upstream client (KEYWAY_UPSTREAM_CLIENT=pool, core/wire/http1), operator key, non-streaming chat.
// Each Keyway pinned to the proxy core, wrk and the stub on the load core (bench/load/pinned-keyway.ts).
// Interleaved rounds (the order alternates each round), medians: requests per second and p99 at c=64,
// CPU microseconds per request by thread (from /proc), then p50/p99 at a fixed 200 req/s on one
// connection. ROUNDS, SECONDS, FIXED_ROUNDS and FIXED_SECONDS set the lengths.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuByThread, cpuPerRequest } from './load/cpu-time.ts';
import { BENCH_OPERATOR_KEY, BENCH_UPSTREAM_KEY, median, operatorCall, ROOT, startKeyway, startStub } from './load/pinned-keyway.ts';
import { type PinnedProcess, stopProcess, waitForHttp } from './load/processes.ts';
import { buildChatBody } from './load/requests.ts';
import { errorCount, runWrk, type WrkRun } from './load/wrk.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SECONDS = Number(process.env.SECONDS ?? 5);
const FIXED_ROUNDS = Number(process.env.FIXED_ROUNDS ?? 3);
const FIXED_SECONDS = Number(process.env.FIXED_SECONDS ?? 10);
const FIXED_RATE = 200;

interface Variant {
  client: 'fetch' | 'pool';
  process: PinnedProcess;
  url: string;
  rates: number[];
  p99s: number[];
  cpu: number[];
  threads: Map<string, number[]>;
  fixedP50s: number[];
  fixedP99s: number[];
}

const directory = mkdtempSync(join(tmpdir(), 'keyway-upstream-client-keyway-'));
const stub = startStub(directory);
const body = buildChatBody();
const variants: Variant[] = (['fetch', 'pool'] as const).map((client) => {
  const keyway = startKeyway(`keyway-${client}`, join(ROOT, 'plugins', 'main.ts'), join(directory, client), stub.port, { KEYWAY_UPSTREAM_CLIENT: client });
  return { client, ...keyway, rates: [], p99s: [], cpu: [], threads: new Map(), fixedP50s: [], fixedP99s: [] };
});

function run(variant: Variant, extra: Partial<WrkRun>): WrkRun {
  return {
    url: `${variant.url}/v1/chat/completions`,
    apiKey: BENCH_OPERATOR_KEY,
    body,
    connections: 64,
    durationSeconds: SECONDS,
    maxRequests: 5_000_000,
    ...extra,
  };
}

try {
  for (const variant of variants) {
    const notReady = await waitForHttp(`${variant.url}/ready`, variant.process, 30_000);
    if (notReady !== undefined) throw new Error(`${variant.client}: ${notReady}`);
    await operatorCall(variant.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
    await runWrk(run(variant, { durationSeconds: 3 }), join(directory, `warm-${variant.client}.lua`));
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const variant of round % 2 === 0 ? [...variants].reverse() : variants) {
      const before = cpuByThread(variant.process.pid);
      const result = await runWrk(run(variant, {}), join(directory, `load-${variant.client}.lua`));
      const after = cpuByThread(variant.process.pid);
      if (errorCount(result) > 0) throw new Error(`${variant.client}: ${errorCount(result)} errors in round ${round}`);
      const cpu = cpuPerRequest(before, after, result.requests);
      const roundThreads = new Map<string, number>();
      for (const [name, nanoseconds] of after) {
        const key = /^HTTP Client/.test(name) ? 'HTTP Client' : name === 'main' ? 'main' : 'other';
        roundThreads.set(key, (roundThreads.get(key) ?? 0) + (nanoseconds - (before.get(name) ?? 0)) / 1000 / result.requests);
      }
      for (const [key, value] of roundThreads) variant.threads.set(key, [...(variant.threads.get(key) ?? []), value]);
      variant.rates.push(result.requestsPerSecond);
      variant.p99s.push(result.latencyMs.p99);
      variant.cpu.push(cpu.total);
      console.log(
        `round ${round} ${variant.client.padEnd(5)} ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latencyMs.p99.toFixed(2)} ms, ${cpu.total.toFixed(1)} µs CPU/request (${cpu.threads})`,
      );
    }
  }
  for (let round = 1; round <= FIXED_ROUNDS; round++) {
    for (const variant of round % 2 === 0 ? [...variants].reverse() : variants) {
      const requests = FIXED_RATE * FIXED_SECONDS;
      const result = await runWrk(
        run(variant, { connections: 1, durationSeconds: FIXED_SECONDS + 5, maxRequests: requests, ratePerSecond: FIXED_RATE }),
        join(directory, `fixed-${variant.client}.lua`),
      );
      if (errorCount(result) > 0) throw new Error(`${variant.client}: ${errorCount(result)} errors in fixed round ${round}`);
      variant.fixedP50s.push(result.latencyMs.p50);
      variant.fixedP99s.push(result.latencyMs.p99);
      console.log(`fixed ${round} ${variant.client.padEnd(5)} p50 ${result.latencyMs.p50.toFixed(3)} ms, p99 ${result.latencyMs.p99.toFixed(3)} ms`);
    }
  }
  for (const variant of variants) {
    const threads = [...variant.threads].map(([name, values]) => `${name} ${median(values).toFixed(1)}`).join(', ');
    console.log(
      `${variant.client.padEnd(5)} median ${Math.round(median(variant.rates))} req/s (${variant.rates.map(Math.round).join(', ')}), ` +
        `p99 ${median(variant.p99s).toFixed(2)} ms, ${median(variant.cpu).toFixed(1)} µs CPU/request (${threads}); ` +
        `fixed ${FIXED_RATE}/s p50 ${median(variant.fixedP50s).toFixed(3)} ms p99 ${median(variant.fixedP99s).toFixed(3)} ms (${variant.fixedP99s.map((value) => value.toFixed(3)).join(', ')})`,
    );
  }
} finally {
  for (const variant of variants) await stopProcess(variant.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
