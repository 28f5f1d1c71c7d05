// Streaming time to first byte on its own (issue 15's "first byte added ≤ 0.3 ms"): the stub and this
// client on CPU 0, the Bun pass-through and each Keyway build on CPU 1, the raw-socket client of
// bench/load.ts phase c, streams alternating between the paths in short rounds so a noisy stretch of
// the machine hits every path alike. Prints per path the quartiles of the first body bytes and the
// median added over direct. Faster than the whole load bench, and it compares builds side by side:
//
//   bun bench/first-byte.ts [rounds=10] [streams-per-round=5]
//   FIRST_BYTE_BUILDS='before=/tmp/keyway-before/plugins/main.ts,after=plugins/main.ts' bun bench/first-byte.ts
//   STUB_CHUNK_DELAY_MS=0 bun bench/first-byte.ts      # back-to-back streams (see below)
//
// Extra variables for one build: FIRST_BYTE_ENV_<name>='KEY=value;KEY2=value'. Warm-up streams per path
// before measuring: 10, or FIRST_BYTE_WARMUP_<name> for one build (JavaScriptCore compiles a function
// with its optimizing tiers only after many calls, and the code that opens a stream runs once a stream). STUB_CHUNK_DELAY_MS
// (default 5, as in bench/load.ts) spaces the stub's events: with 5 ms the proxy idles between events
// and between streams, as in phase c; with 0 each stream is over in about a millisecond and the next
// one follows at once, which keeps the proxy's code and data in the CPU's caches (the "hot" figure).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BENCH_OPERATOR_KEY, BENCH_UPSTREAM_KEY, operatorCall, ROOT, startKeyway, startStub } from './load/pinned-keyway.ts';
import { pinSelf, startPassthrough, stopAllChildren, waitForHttp } from './load/processes.ts';
import { RawStreamConnection } from './load/raw-stream-client.ts';
import { buildStreamingChatBody, CHAT_COMPLETIONS_PATH } from './load/requests.ts';
import type { StreamSample } from './load/streaming.ts';

interface Path {
  name: string;
  port: number;
  key: string;
  connection?: RawStreamConnection;
  firstBytes: number[];
}

const rounds = Number(process.argv[2] ?? '10');
const perRound = Number(process.argv[3] ?? '5');
process.env.STUB_CHUNK_DELAY_MS ??= '5';
const directory = mkdtempSync(join(tmpdir(), 'keyway-first-byte-'));
pinSelf();

function quantile(values: number[], fraction: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(fraction * (sorted.length - 1))] ?? Number.NaN;
}

function parseBuilds(): { name: string; entrypoint: string; env: Record<string, string> }[] {
  return (process.env.FIRST_BYTE_BUILDS ?? 'keyway=plugins/main.ts').split(',').map((entry) => {
    const [name = 'keyway', file = 'plugins/main.ts'] = entry.split('=');
    const env = Object.fromEntries(
      (process.env[`FIRST_BYTE_ENV_${name}`] ?? '')
        .split(';')
        .filter((pair) => pair.includes('='))
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    );
    return { name, entrypoint: resolve(ROOT, file), env };
  });
}

/** One stream on the path's kept-alive connection; reconnects once if the server closed it while idle. */
async function timedStream(path: Path, body: string): Promise<StreamSample> {
  const host = `127.0.0.1:${path.port}`;
  try {
    path.connection ??= await RawStreamConnection.open('127.0.0.1', path.port);
    return await path.connection.stream(host, CHAT_COMPLETIONS_PATH, path.key, body);
  } catch {
    path.connection = await RawStreamConnection.open('127.0.0.1', path.port);
    return path.connection.stream(host, CHAT_COMPLETIONS_PATH, path.key, body);
  }
}

async function main(): Promise<void> {
  const stub = startStub(directory);
  const { process: passthrough, port: passthroughPort } = startPassthrough('passthrough', stub.port, join(directory, 'passthrough.out'));
  const builds = parseBuilds().map((build) => ({
    ...build,
    started: startKeyway(build.name, build.entrypoint, join(directory, build.name), stub.port, build.env),
  }));
  const paths: Path[] = [
    { name: 'direct', port: stub.port, key: BENCH_UPSTREAM_KEY, firstBytes: [] },
    { name: 'pass-through', port: passthroughPort, key: BENCH_UPSTREAM_KEY, firstBytes: [] },
  ];
  // The stub and the pass-through answer 401 to a request without the upstream key: they are up.
  const passthroughProblem = await waitForHttp(`http://127.0.0.1:${passthroughPort}/v1/models`, passthrough, 20_000, 401);
  if (passthroughProblem !== undefined) throw new Error(passthroughProblem);
  for (const build of builds) {
    const problem = await waitForHttp(`${build.started.url}/ready`, build.started.process, 30_000);
    if (problem !== undefined) throw new Error(problem);
    await operatorCall(build.started.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
    paths.push({ name: build.name, port: Number(new URL(build.started.url).port), key: BENCH_OPERATOR_KEY, firstBytes: [] });
  }
  const body = buildStreamingChatBody();
  for (const path of paths) {
    const warmup = Number(process.env[`FIRST_BYTE_WARMUP_${path.name}`] ?? '10');
    for (let index = 0; index < warmup; index++) await timedStream(path, body);
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? paths : [...paths].reverse();
    for (const path of order) for (let index = 0; index < perRound; index++) path.firstBytes.push((await timedStream(path, body)).firstByteMs);
  }
  const direct = quantile(paths[0]?.firstBytes ?? [], 0.5);
  const load = (await Bun.file('/proc/loadavg').text()).trim();
  console.log(
    `${rounds} rounds × ${perRound} streams per path, stub event spacing ${process.env.STUB_CHUNK_DELAY_MS} ms; first body bytes in ms; load average ${load}`,
  );
  for (const path of paths) {
    const [p25, p50, p75] = [0.25, 0.5, 0.75].map((fraction) => quantile(path.firstBytes, fraction)) as [number, number, number];
    const added = path.name === 'direct' ? '(baseline)' : `added p50 ${(p50 - direct).toFixed(3)}`;
    console.log(`${path.name.padEnd(14)} p25 ${p25.toFixed(3)}  p50 ${p50.toFixed(3)}  p75 ${p75.toFixed(3)}  ${added}`);
  }
  for (const path of paths) path.connection?.close();
}

try {
  await main();
} finally {
  await stopAllChildren();
}
