// Issue 15's ablation: where a missed hot-path target goes, in one run on one machine. A ladder of
// proxies, each doing more of what Keyway does, measured by the load bench's method (proxy on CPU 1,
// stub and load generator on CPU 0, interleaved rounds, medians):
//
//   direct            the stub itself
//   nginx             a plain nginx reverse proxy (left out when nginx is not installed)
//   pass-through      bench/bun-passthrough.ts: the runtime's floor (Bun.serve + fetch)
//   gateway floor     bench/ablation/gateway-floor.ts: the least the spec obliges (key hash, JSON body,
//                     provider key, usage read from the answer, first event held for fallback)
//   keyway, core      Keyway without its optional plugins (teams and policies, analytics, audit,
//                     metrics, alerts, dialects, …): the lifecycle, routing, deadlines, health, accounting
//   keyway, no usage  every plugin, usage rows neither journaled nor written
//   keyway            every plugin, usage written
//
// Every Bun rung runs with the same flags (none): the load bench measures `npm start`'s `--smol`.
//
//   bun bench/ablation.ts [rounds=3] [seconds=3]
//
// Prints, per rung: req/s at c=64 and CPU per request by thread, p50/p99 at a fixed 200 req/s on one
// connection, the added streaming first byte, and idle RSS.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuByThread, cpuPerRequest } from './load/cpu-time.ts';
import { BENCH_OPERATOR_KEY, BENCH_UPSTREAM_KEY, median, operatorCall, ROOT, startKeyway, startStub } from './load/pinned-keyway.ts';
import type { PinnedProcess } from './load/processes.ts';
import { findFreePort, PROXY_CORE, pinSelf, settledRssKibibytes, startPassthrough, startPinned, stopAllChildren, waitForHttp } from './load/processes.ts';
import { RawStreamConnection } from './load/raw-stream-client.ts';
import { buildChatBody, buildStreamingChatBody, CHAT_COMPLETIONS_PATH } from './load/requests.ts';
import { runWrk } from './load/wrk.ts';
import { startNginx } from './load/nginx.ts';
import { nginxInstalled } from './load/prerequisites.ts';

interface Rung {
  name: string;
  url: string;
  key: string;
  process?: PinnedProcess;
  rates: number[];
  cpu: { total: number; main: number; httpClient: number; rest: number }[];
  fixedP50: number[];
  fixedP99: number[];
  firstBytes: number[];
  idleRssMiB?: number;
  connection?: RawStreamConnection;
}

const rounds = Number(process.argv[2] ?? '3');
const seconds = Number(process.argv[3] ?? '3');
const FIXED_RATE = 200;
const FIXED_SECONDS = 10;
const STREAMS_PER_ROUND = 10;
process.env.STUB_CHUNK_DELAY_MS ??= '5';
const directory = mkdtempSync(join(tmpdir(), 'keyway-ablation-'));

/** Everything not needed to serve a chat request with the operator key on the embedded store. */
const OPTIONAL_PLUGINS = [
  'counters-redis',
  'store-postgres',
  'crypto-vault-transit',
  'dialect-anthropic-messages',
  'dialect-openai-responses',
  'teams',
  'analytics',
  'reconciliation',
  'ip-allowlist',
  'project-tags',
  'hosted-tools',
  'environment',
  'provider-access',
  'approvals',
  'cost-cap',
  'content-blocking',
  'rate-limits',
  'metrics',
  'otel-traces',
  'audit',
  'webhooks',
  'alerts',
  'alert-slack',
  'alert-webhook',
  'alert-email',
  'rotation',
  'key-source-env',
  'key-source-file',
  'key-source-command',
  'key-source-vault-kv',
  'key-source-openai-admin',
  'dashboard',
];

function startFloor(stubPort: number): { process: PinnedProcess; url: string } {
  const port = findFreePort();
  const started = startPinned(
    'floor',
    PROXY_CORE,
    [process.execPath, resolve(ROOT, 'bench', 'ablation', 'gateway-floor.ts')],
    {
      FLOOR_PORT: String(port),
      FLOOR_UPSTREAM: `http://127.0.0.1:${stubPort}`,
      FLOOR_GATEWAY_KEY: BENCH_OPERATOR_KEY,
      FLOOR_PROVIDER_KEY: BENCH_UPSTREAM_KEY,
    },
    join(directory, 'floor.out'),
  );
  return { process: started, url: `http://127.0.0.1:${port}` };
}

function startKeywayRung(name: string, entrypoint: string, stubPort: number, env: Record<string, string>): { process: PinnedProcess; url: string } {
  return startKeyway(name, resolve(ROOT, entrypoint), join(directory, name), stubPort, env);
}

const emptyRung = (name: string, url: string, key: string, process?: PinnedProcess): Rung => ({
  name,
  url,
  key,
  ...(process === undefined ? {} : { process }),
  rates: [],
  cpu: [],
  fixedP50: [],
  fixedP99: [],
  firstBytes: [],
});

async function ready(rung: Rung, status = 200): Promise<void> {
  const path = rung.name.startsWith('keyway') ? '/ready' : '/v1/models';
  // The stub, the pass-through and the floor answer 401 to a request without a key: they are up.
  const expected = rung.name.startsWith('keyway') ? status : 401;
  const problem = await waitForHttp(`${rung.url}${path}`, rung.process as PinnedProcess, 30_000, expected);
  if (problem !== undefined) throw new Error(`${rung.name}: ${problem}`);
  if (rung.name.startsWith('keyway')) await operatorCall(rung.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
}

async function throughputRound(rung: Rung, body: string): Promise<void> {
  const before = rung.process === undefined ? undefined : cpuByThread(rung.process.pid);
  const result = await runWrk(
    { url: rung.url, apiKey: rung.key, body, connections: 64, durationSeconds: seconds, maxRequests: 5_000_000 },
    join(directory, `wrk-${rung.name.replaceAll(' ', '-')}.lua`),
  );
  if (result.errors.status + result.errors.connect + result.errors.read > 0) throw new Error(`${rung.name}: errors ${JSON.stringify(result.errors)}`);
  rung.rates.push(result.requestsPerSecond);
  if (rung.process !== undefined && before !== undefined) {
    const after = cpuByThread(rung.process.pid);
    const perThread = (name: string): number => ((after.get(name) ?? 0) - (before.get(name) ?? 0)) / 1000 / result.requests;
    const total = cpuPerRequest(before, after, result.requests).total;
    const main = perThread('main');
    const httpClient = perThread('HTTP Client');
    rung.cpu.push({ total, main, httpClient, rest: total - main - httpClient });
  }
}

async function fixedRateRound(rung: Rung, body: string): Promise<void> {
  const result = await runWrk(
    {
      url: rung.url,
      apiKey: rung.key,
      body,
      connections: 1,
      durationSeconds: FIXED_SECONDS + 5,
      maxRequests: FIXED_RATE * FIXED_SECONDS,
      ratePerSecond: FIXED_RATE,
    },
    join(directory, `wrk-fixed-${rung.name.replaceAll(' ', '-')}.lua`),
  );
  rung.fixedP50.push(result.latencyMs.p50);
  rung.fixedP99.push(result.latencyMs.p99);
}

async function timedStream(rung: Rung, body: string): Promise<number> {
  const { hostname, port, host } = new URL(rung.url);
  try {
    rung.connection ??= await RawStreamConnection.open(hostname, Number(port));
    return (await rung.connection.stream(host, CHAT_COMPLETIONS_PATH, rung.key, body)).firstByteMs;
  } catch {
    rung.connection = await RawStreamConnection.open(hostname, Number(port));
    return (await rung.connection.stream(host, CHAT_COMPLETIONS_PATH, rung.key, body)).firstByteMs;
  }
}

const ordered = (rungs: Rung[], round: number): Rung[] => (round % 2 === 0 ? rungs : [...rungs].reverse());
const format = (value: number | undefined, digits: number): string => (value === undefined || Number.isNaN(value) ? '' : value.toFixed(digits));
const cpuMedian = (rung: Rung, part: 'total' | 'main' | 'httpClient' | 'rest'): number | undefined =>
  rung.cpu.length === 0 ? undefined : median(rung.cpu.map((each) => each[part]));

function report(rungs: Rung[]): void {
  const passthrough = rungs.find((rung) => rung.name === 'pass-through') as Rung;
  const nginx = rungs.find((rung) => rung.name === 'nginx');
  const direct = rungs[0] as Rung;
  const directFirstByte = median(direct.firstBytes);
  const directFixedP50 = median(direct.fixedP50);
  console.log(
    `\n${rounds} interleaved rounds: ${seconds} s at c=64; ${FIXED_SECONDS} s at ${FIXED_RATE} req/s on one connection; ${STREAMS_PER_ROUND} streams (events ${process.env.STUB_CHUNK_DELAY_MS} ms apart). Medians.\n`,
  );
  console.log(
    '| rung | req/s c=64 | vs pass-through | CPU µs/request (main, HTTP client, rest) | fixed p50 ms | added p50 ms | added p50 − nginx’s ms | fixed p99 ms | first byte added ms | idle RSS MiB |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const nginxAdded = nginx === undefined ? Number.NaN : median(nginx.fixedP50) - directFixedP50;
  for (const rung of rungs) {
    const rate = median(rung.rates);
    const cpu =
      rung.cpu.length === 0
        ? ''
        : `${format(cpuMedian(rung, 'total'), 1)} (${format(cpuMedian(rung, 'main'), 1)}, ${format(cpuMedian(rung, 'httpClient'), 1)}, ${format(cpuMedian(rung, 'rest'), 1)})`;
    const fixedP50 = median(rung.fixedP50);
    const firstByte = median(rung.firstBytes);
    console.log(
      `| ${rung.name} | ${Math.round(rate)} | ${rung === direct ? '' : `${((100 * rate) / median(passthrough.rates)).toFixed(1)} %`} | ${cpu} | ${format(fixedP50, 3)} | ${rung === direct ? '(baseline)' : format(fixedP50 - directFixedP50, 3)} | ${rung === direct || rung === nginx ? '' : format(fixedP50 - directFixedP50 - nginxAdded, 3)} | ${format(median(rung.fixedP99), 3)} | ${rung === direct ? '(baseline)' : format(firstByte - directFirstByte, 3)} | ${format(rung.idleRssMiB, 1)} |`,
    );
  }
  console.log('\nRounds (req/s):');
  for (const rung of rungs)
    console.log(`  ${rung.name.padEnd(18)} ${rung.rates.map(Math.round).join(', ')}; fixed p99 ${rung.fixedP99.map((each) => each.toFixed(2)).join(', ')}`);
}

async function main(): Promise<void> {
  pinSelf();
  const stub = startStub(directory);
  const passthrough = startPassthrough('passthrough', stub.port, join(directory, 'passthrough.out'));
  const nginxPort = findFreePort();
  const nginx = nginxInstalled() ? startNginx(join(directory, 'nginx'), nginxPort, stub.port) : undefined;
  const floor = startFloor(stub.port);
  const core = startKeywayRung('keyway-core', 'bench/entrypoints/without-plugins.ts', stub.port, { KEYWAY_BENCH_WITHOUT: OPTIONAL_PLUGINS.join(',') });
  const noUsage = startKeywayRung('keyway-no-usage', 'bench/entrypoints/no-usage-writes.ts', stub.port, { KEYWAY_USAGE_JOURNAL: 'off' });
  const keyway = startKeywayRung('keyway', 'plugins/main.ts', stub.port, {});
  const rungs: Rung[] = [
    emptyRung('direct', `http://127.0.0.1:${stub.port}`, BENCH_UPSTREAM_KEY, stub.process),
    ...(nginx === undefined ? [] : [emptyRung('nginx', `http://127.0.0.1:${nginxPort}`, BENCH_UPSTREAM_KEY, nginx)]),
    emptyRung('pass-through', `http://127.0.0.1:${passthrough.port}`, BENCH_UPSTREAM_KEY, passthrough.process),
    emptyRung('gateway floor', floor.url, BENCH_OPERATOR_KEY, floor.process),
    emptyRung('keyway, core', core.url, BENCH_OPERATOR_KEY, core.process),
    emptyRung('keyway, no usage', noUsage.url, BENCH_OPERATOR_KEY, noUsage.process),
    emptyRung('keyway', keyway.url, BENCH_OPERATOR_KEY, keyway.process),
  ];
  for (const rung of rungs.slice(1)) await ready(rung);
  // nginx runs a master and a worker: its RSS is not one process's and is left out.
  await Bun.sleep(3000);
  for (const rung of rungs.slice(1).filter((each) => each.name !== 'nginx')) {
    const kibibytes = await settledRssKibibytes((rung.process as PinnedProcess).pid);
    if (kibibytes !== undefined) rung.idleRssMiB = kibibytes / 1024;
  }
  const body = buildChatBody();
  const streamingBody = buildStreamingChatBody();
  for (const rung of rungs) {
    await runWrk(
      { url: rung.url, apiKey: rung.key, body, connections: 64, durationSeconds: 2, maxRequests: 5_000_000 },
      join(directory, `wrk-warm-${rung.name.replaceAll(' ', '-')}.lua`),
    );
    for (let index = 0; index < 20; index++) await timedStream(rung, streamingBody);
  }
  for (let round = 0; round < rounds; round++) {
    // The stub is rung 0: its CPU is the load core's, not a proxy's, so its throughput rounds are kept but its CPU is not read.
    for (const rung of ordered(rungs, round)) await throughputRound(rung, body);
    for (const rung of ordered(rungs, round)) await fixedRateRound(rung, body);
    for (const rung of ordered(rungs, round))
      for (let index = 0; index < STREAMS_PER_ROUND; index++) rung.firstBytes.push(await timedStream(rung, streamingBody));
    console.log(`round ${round + 1} of ${rounds} done, load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')}`);
  }
  (rungs[0] as Rung).cpu.length = 0;
  report(rungs);
  for (const rung of rungs) rung.connection?.close();
}

try {
  await main();
} finally {
  await stopAllChildren();
}
