// bun bench/idle-rss.ts [--rounds N] <variant> … — Keyway's idle resident memory, variant by
// variant, in interleaved rounds (A B C A B C …, medians), each run a fresh process on an empty data
// folder, pinned to the proxy core like bench/load.ts pins it.
//
// One run: start, wait for /ready, register a provider key for the upstream stub (as bench/load.ts does), wait
// IDLE_SECONDS (5), read VmRSS (the lowest over 2 s, bench/load/processes.ts) with its anonymous and
// file-backed parts; then, for the runs from source, ask for a full garbage collection
// (bench/idle-rss/gc-on-signal.ts) and read it again with the JavaScript heap's own figures, which
// tells the live heap from what the allocators keep.
//
// A variant is a base and modifiers joined by '+':
//   source                 `bun plugins/main.ts` (npm start), one process
//   checkout=<folder>      `bun <folder>/plugins/main.ts`: another checkout (the code before a change)
//   binary[=<path>]        the single binary at <path>, else KEYWAY_BENCH_BINARY, else dist/keyway (no GC reading: no preload there)
//   entry                  bench/idle-rss/entry.ts: the gateway with ablations (below)
//   bare                   a Bun.serve answering "ok": what the runtime alone holds
//   smol                   `bun --smol` (the binary: BUN_OPTIONS=--smol)
//   ablate=<prefix>|…      (entry) replace the modules under these repository paths by stubs (bench/idle-rss/ablate.ts)
//   without=<plugin>|…     (entry) leave these plugins out (their modules still load)
//   env=NAME=VALUE         an extra environment variable
// --load <seconds> adds, after the idle readings, wrk at c=64 on one chat request and the RSS then
// (the usage writer thread, say, starts with the first usage batch).
// e.g. `bun bench/idle-rss.ts source entry entry+ablate=plugins/dashboard source+smol`.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT, runWrk, startStub, writeWrkScript } from './load/pinned-keyway.ts';
import { findFreePort, hasExited, logTail, pinChildrenOnly, PROXY_CORE, settledRssKibibytes, startPinned, stopProcess, waitForHttp } from './load/processes.ts';
import { adminRequest } from './load/keyway.ts';
import { ADMIN_API_KEY, UPSTREAM_API_KEY } from './load/requests.ts';

const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 5);
const GC_PRELOAD = join(ROOT, 'bench', 'idle-rss', 'gc-on-signal.ts');
const ABLATE_PRELOAD = join(ROOT, 'bench', 'idle-rss', 'ablate.ts');

interface Variant {
  name: string;
  command: string[];
  env: Record<string, string>;
  /** The process runs the GC preload, so a collection can be asked for. */
  collects: boolean;
  /** The process is Keyway (it has /ready and the admin API). */
  gateway: boolean;
}

interface Reading {
  rss: number;
  anon: number;
  file: number;
  rssAfterGc?: number;
  anonAfterGc?: number;
  heapSize?: number;
  heapCapacity?: number;
  extraMemory?: number;
  /** With --load: the lowest VmRSS over 2 s once the load stopped, the threads then, and the load's rate. */
  rssAfterLoad?: number;
  threadsAfterLoad?: number;
  requestsPerSecond?: number;
}

function parseVariant(text: string): Variant {
  const [head, ...modifiers] = text.split('+');
  const [base, argument = ''] = (head ?? '').split('=');
  const env: Record<string, string> = {};
  const bunFlags: string[] = [];
  let smol = false;
  for (const modifier of modifiers) {
    const [key, ...rest] = modifier.split('=');
    const value = rest.join('=');
    if (key === 'smol') smol = true;
    else if (key === 'ablate') env.KEYWAY_BENCH_ABLATE = value.split('|').join(',');
    else if (key === 'without') env.KEYWAY_BENCH_WITHOUT = value.split('|').join(',');
    else if (key === 'env') {
      const [name, ...values] = value.split('=');
      env[name as string] = values.join('=');
    } else throw new Error(`unknown modifier '${modifier}' in variant '${text}'`);
  }
  if (smol) bunFlags.push('--smol');
  const preloads = ['--preload', GC_PRELOAD];
  switch (base) {
    case 'source':
      return { name: text, command: [process.execPath, ...bunFlags, ...preloads, join(ROOT, 'plugins', 'main.ts')], env, collects: true, gateway: true };
    case 'entry':
      env.KEYWAY_BENCH_ABLATE ??= '';
      return {
        name: text,
        command: [process.execPath, ...bunFlags, ...preloads, '--preload', ABLATE_PRELOAD, join(ROOT, 'bench', 'idle-rss', 'entry.ts')],
        env,
        collects: true,
        gateway: true,
      };
    case 'bare':
      return {
        name: text,
        command: [process.execPath, ...bunFlags, ...preloads, join(ROOT, 'bench', 'idle-rss', 'bare.ts')],
        env,
        collects: true,
        gateway: false,
      };
    case 'checkout':
      return {
        name: text,
        command: [process.execPath, ...bunFlags, ...preloads, join(resolve(argument), 'plugins', 'main.ts')],
        env,
        collects: true,
        gateway: true,
      };
    case 'binary': {
      const binary = resolve(argument || (process.env.KEYWAY_BENCH_BINARY ?? join(ROOT, 'dist', 'keyway')));
      if (smol) env.BUN_OPTIONS = '--smol';
      return { name: text, command: [binary], env, collects: false, gateway: true };
    }
    default:
      throw new Error(`unknown variant base '${base}' in '${text}'`);
  }
}

function readStatus(pid: number): { anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { anon: field('RssAnon'), file: field('RssFile') };
}

/** --load <seconds>: after the readings, wrk at c=64 on one chat request (bench/load/pinned-keyway.ts), then RSS again. */
let loadSeconds = 0;

async function afterLoad(baseUrl: string, pid: number, directory: string, reading: Reading): Promise<void> {
  const script = join(directory, 'chat.lua');
  writeWrkScript(script, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] }, ADMIN_API_KEY);
  const result = await runWrk(`${baseUrl}/v1/chat/completions`, script, loadSeconds);
  reading.requestsPerSecond = result.rate;
  reading.rssAfterLoad = await settledRssKibibytes(pid);
  reading.threadsAfterLoad = Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

async function measure(variant: Variant, directory: string, stubPort: number): Promise<Reading> {
  mkdirSync(directory, { recursive: true });
  const port = findFreePort();
  const heapReport = join(directory, 'heap.jsonl');
  const child = startPinned(
    variant.name,
    PROXY_CORE,
    variant.command,
    {
      KEYWAY_HOST: '127.0.0.1',
      KEYWAY_PORT: String(port),
      KEYWAY_DATA_DIR: directory,
      KEYWAY_DATABASE_URL: `file:${join(directory, 'keyway.db')}`,
      KEYWAY_ADMIN_KEY: ADMIN_API_KEY,
      KEYWAY_LOG_LEVEL: 'warn',
      KEYWAY_WORKERS: '1',
      // As bench/load.ts: the provider key's verification calls the local stub, not the internet.
      KEYWAY_OPENAI_BASE_URL: `http://127.0.0.1:${stubPort}/v1`,
      KEYWAY_BENCH_HEAP_REPORT: heapReport,
      ...variant.env,
    },
    join(directory, 'out.log'),
  );
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    const problem = await waitForHttp(`${baseUrl}${variant.gateway ? '/ready' : '/'}`, child, 30_000);
    if (problem !== undefined) throw new Error(`${problem}\n${logTail(child)}`);
    if (variant.gateway) {
      const registered = await adminRequest(baseUrl, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_API_KEY }] });
      if (registered !== undefined) throw new Error(registered);
    }
    await Bun.sleep(IDLE_SECONDS * 1000);
    const rss = (await settledRssKibibytes(child.pid)) ?? Number.NaN;
    const reading: Reading = { rss, ...readStatus(child.pid) };
    if (variant.collects && !hasExited(child)) {
      process.kill(child.pid, 'SIGUSR2');
      await Bun.sleep(1000);
      reading.rssAfterGc = await settledRssKibibytes(child.pid);
      reading.anonAfterGc = readStatus(child.pid).anon;
      const lines = readFileSync(heapReport, 'utf8').trim().split('\n');
      const heap = JSON.parse(lines[lines.length - 1] as string) as { heapSize: number; heapCapacity: number; extraMemorySize: number };
      reading.heapSize = heap.heapSize / 1024;
      reading.heapCapacity = heap.heapCapacity / 1024;
      reading.extraMemory = heap.extraMemorySize / 1024;
    }
    if (loadSeconds > 0 && variant.gateway) await afterLoad(baseUrl, child.pid, directory, reading);
    return reading;
  } finally {
    await stopProcess(child);
  }
}

const median = (values: number[]): number => {
  const known = values.filter((value) => Number.isFinite(value)).sort((left, right) => left - right);
  return known.length === 0 ? Number.NaN : (known[Math.floor(known.length / 2)] as number);
};
const mib = (kibibytes: number): string => (Number.isFinite(kibibytes) ? (kibibytes / 1024).toFixed(1) : '–');

const args = process.argv.slice(2);
let rounds = 3;
const roundsIndex = args.indexOf('--rounds');
if (roundsIndex >= 0) {
  rounds = Number(args[roundsIndex + 1]);
  args.splice(roundsIndex, 2);
}
const loadIndex = args.indexOf('--load');
if (loadIndex >= 0) {
  loadSeconds = Number(args[loadIndex + 1]);
  args.splice(loadIndex, 2);
}
if (args.length === 0) throw new Error('usage: bun bench/idle-rss.ts [--rounds N] <variant> …');
const variants = args.map(parseVariant);
pinChildrenOnly();
const scratch = mkdtempSync(join(tmpdir(), 'keyway-idle-rss-'));
const readings = new Map<string, Reading[]>(variants.map((variant) => [variant.name, []]));
const stub = startStub(scratch);
try {
  for (let round = 0; round < rounds; round += 1) {
    for (const variant of variants) {
      const reading = await measure(variant, join(scratch, `${round}-${variants.indexOf(variant)}`), stub.port);
      readings.get(variant.name)?.push(reading);
      console.error(`round ${round + 1} ${variant.name}: ${mib(reading.rss)} MiB (after GC ${mib(reading.rssAfterGc ?? Number.NaN)})`);
    }
  }
} finally {
  await stopProcess(stub.process);
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`\n${rounds} interleaved round(s), medians, MiB; idle = ${IDLE_SECONDS} s after start and key registration\n`);
const loadColumns = loadSeconds > 0 ? ` VmRSS after ${loadSeconds} s at c=64 | threads then | req/s |` : '';
console.log(`| variant | VmRSS | anon | file | VmRSS after GC | anon after GC | JS heap live | JS heap capacity | extra memory |${loadColumns}`);
console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- |${loadSeconds > 0 ? ' --- | --- | --- |' : ''}`);
for (const variant of variants) {
  const list = readings.get(variant.name) ?? [];
  const pick = (key: keyof Reading): string => mib(median(list.map((reading) => reading[key] ?? Number.NaN)));
  const load =
    loadSeconds > 0
      ? ` ${pick('rssAfterLoad')} | ${median(list.map((reading) => reading.threadsAfterLoad ?? Number.NaN)).toFixed(0)} | ${median(list.map((reading) => reading.requestsPerSecond ?? Number.NaN)).toFixed(0)} |`
      : '';
  console.log(
    `| ${variant.name} | ${pick('rss')} | ${pick('anon')} | ${pick('file')} | ${pick('rssAfterGc')} | ${pick('anonAfterGc')} | ${pick('heapSize')} | ${pick('heapCapacity')} | ${pick('extraMemory')} |${load}`,
  );
}
