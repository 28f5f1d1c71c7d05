// The fixed-rate tail on its own (issue 15's "p99 at 200 req/s, c=1 ≤ 1.2 ms"): Keyway started in
// several variants (Bun flags and environment), each pinned to the proxy core and measured alone at a
// fixed 200 req/s with one connection (wrk paced as in bench/load.ts phase a2), the variants
// interleaved round by round, so what a variant changes in the tail can be told from the machine's
// round-to-round spread. Prints each round and the medians of p50, p99 and p99.9.
//
//   bun bench/fixed-rate-variants.ts [rounds=3] [seconds=10]
//   FIXED_RATE_VARIANTS='[{"name":"plain","flags":[],"env":{}}]' bun bench/fixed-rate-variants.ts
//   (a variant may name an `entrypoint`: another checkout's plugins/main.ts, or a bench build)
//
// The default variants: `--smol` (as `npm start` runs), no flag, `--smol` with JavaScriptCore's GC
// timer off, and `--smol` with usage written on the gateway's thread instead of the writer thread.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchKeywayEnvironment, median, operatorCall, ROOT, startStub } from './load/pinned-keyway.ts';
import { findFreePort, PROXY_CORE, startPinned, stopAllChildren, stopProcess, waitForHttp } from './load/processes.ts';
import { ADMIN_API_KEY, buildChatBody, UPSTREAM_API_KEY } from './load/requests.ts';
import { runWrk } from './load/wrk.ts';

interface Variant {
  name: string;
  flags: string[];
  env: Record<string, string>;
  /** The entry point, from this checkout or another (default: this checkout's plugins/main.ts). */
  entrypoint?: string;
}

const DEFAULT_VARIANTS: Variant[] = [
  { name: 'smol', flags: ['--smol'], env: {} },
  { name: 'plain', flags: [], env: {} },
  { name: 'smol, GC timer off', flags: ['--smol'], env: { BUN_GC_TIMER_DISABLE: '1' } },
  { name: 'smol, inline writer', flags: ['--smol'], env: { KEYWAY_USAGE_WRITER: 'inline' } },
];
// RATE and CONNECTIONS (defaults 200 and 1) give a busier fixed load: e.g. 3000 requests a second over
// 32 connections, where a usage batch that holds the proxy core shows in the tail.
const RATE = Number(process.env.RATE ?? 200);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 1);

const variants: Variant[] = process.env.FIXED_RATE_VARIANTS === undefined ? DEFAULT_VARIANTS : JSON.parse(process.env.FIXED_RATE_VARIANTS);
const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 10);
const directory = mkdtempSync(join(tmpdir(), 'keyway-fixed-rate-'));
const stub = startStub(directory);
const body = buildChatBody();
const tails = new Map<string, Array<{ p50: number; p99: number; p999: number }>>();

async function measure(variant: Variant, round: number): Promise<void> {
  const data = join(directory, `${variant.name.replaceAll(/\W+/g, '-')}-${round}`);
  mkdirSync(data, { recursive: true });
  const port = findFreePort();
  const environment = { ...benchKeywayEnvironment(data, port, stub.port), ...variant.env };
  const keyway = startPinned(
    variant.name,
    PROXY_CORE,
    [process.execPath, ...variant.flags, variant.entrypoint ?? join(ROOT, 'plugins', 'main.ts')],
    environment,
    join(data, 'keyway.out'),
  );
  try {
    const url = `http://127.0.0.1:${port}`;
    const notReady = await waitForHttp(`${url}/ready`, keyway, 30_000);
    if (notReady !== undefined) throw new Error(`${variant.name}: ${notReady}`);
    await operatorCall(url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_API_KEY }] });
    const run = { url: `${url}/v1/chat/completions`, apiKey: ADMIN_API_KEY, body, connections: CONNECTIONS, maxRequests: 1_000_000, ratePerSecond: RATE };
    const script = join(data, 'fixed-rate.lua');
    await runWrk({ ...run, durationSeconds: 3 }, script);
    const result = await runWrk({ ...run, durationSeconds: seconds }, script);
    const { p50, p99, p999, max } = result.latencyMs;
    const list = tails.get(variant.name) ?? [];
    list.push({ p50, p99, p999 });
    tails.set(variant.name, list);
    console.log(
      `round ${round} ${variant.name.padEnd(22)} p50 ${p50.toFixed(3)} p99 ${p99.toFixed(3)} p99.9 ${p999.toFixed(3)} max ${max.toFixed(2)} ms, sent late ${result.lateSends ?? 0}`,
    );
  } finally {
    await stopProcess(keyway);
  }
}

try {
  for (let round = 1; round <= rounds; round++) {
    for (const variant of round % 2 === 1 ? variants : [...variants].reverse()) await measure(variant, round);
  }
  for (const [name, list] of tails) {
    const pick = (field: 'p50' | 'p99' | 'p999'): string => median(list.map((entry) => entry[field])).toFixed(3);
    console.log(`${name.padEnd(22)} medians: p50 ${pick('p50')}, p99 ${pick('p99')}, p99.9 ${pick('p999')} ms`);
  }
} finally {
  await stopAllChildren();
}
