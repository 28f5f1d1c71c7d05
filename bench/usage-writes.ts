// bun bench/usage-writes.ts — what writing usage (the row, its journal entry and the roll-ups) costs the
// request path: throughput, latency and CPU per request (every thread of the process, from /proc) at
// c=64 of the real gateway against a build whose store drops usage rows (bench/entrypoints/no-usage-writes.ts,
// journal off), interleaved rounds, each Keyway pinned to the same core, wrk and the stub to the other
// (bench/load/pinned-keyway.ts). Target (issue 10): no measurable difference. CPU per request holds
// steadier than req/s on a busy machine. ABLATIONS=1 adds the builds that show where the cost is;
// ROUNDS and SECONDS set the length; WRITER_ELSEWHERE=1 adds the writer thread on a core of its own.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuByThread, cpuPerRequest } from './load/cpu-time.ts';
import {
  BENCH_OPERATOR_KEY,
  BENCH_UPSTREAM_KEY,
  type Build,
  median,
  operatorCall,
  ROOT,
  runWrk,
  spread,
  startKeyway,
  startStub,
  writeWrkScript,
} from './load/pinned-keyway.ts';
import { LOAD_CORE, type PinnedProcess, stopProcess, waitForHttp } from './load/processes.ts';

/** Pins every thread of `pid` named `name` to `core` (the writer thread starts with the first batch). */
function moveThreads(pid: number, name: string, core: number): void {
  let moved = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== name) continue;
    const result = Bun.spawnSync(['taskset', '-cp', String(core), tid], { stdout: 'ignore', stderr: 'pipe' });
    if (result.exitCode !== 0) throw new Error(`taskset ${tid}: ${result.stderr.toString()}`);
    moved++;
  }
  if (moved === 0) throw new Error(`no thread named ${name} in ${pid}`);
}

/**
 * Usage rows booked and not yet in the database (GET /metrics): the writer runs on spare CPU
 * (plugins/store-sqlite/writer-priority.ts), so a round's rows may be written after it; read once the
 * round's drain time has passed, this shows they were, and the CPU per request above counts that work.
 */
async function pendingRows(url: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}` } });
  const text = await response.text();
  return Number(/^keyway_usage_queue_pending_rows\s+(\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

const MAIN = join(ROOT, 'plugins', 'main.ts');
const DROPPING = join(ROOT, 'bench', 'entrypoints', 'no-usage-writes.ts');
const builds: Build[] = [
  { name: 'usage written (row, journal, roll-up)', entrypoint: MAIN, env: {} },
  { name: 'usage not written', entrypoint: DROPPING, env: { KEYWAY_USAGE_JOURNAL: 'off' } },
];
// COMPARE_WITH=<another checkout> adds that tree's gateway (e.g. `git archive <commit>` unpacked, with
// node_modules linked): before and after a change, in the same interleaved rounds.
if (process.env.COMPARE_WITH !== undefined) {
  builds.push({ name: 'usage written, COMPARE_WITH', entrypoint: join(process.env.COMPARE_WITH, 'plugins', 'main.ts'), env: {} });
}
if (process.env.ABLATIONS === '1') {
  builds.push(
    { name: 'written on the gateway thread', entrypoint: MAIN, env: { KEYWAY_USAGE_WRITER: 'inline' } },
    { name: 'written, journal off', entrypoint: MAIN, env: { KEYWAY_USAGE_JOURNAL: 'off' } },
    { name: 'written, no roll-ups', entrypoint: DROPPING, env: { KEYWAY_BENCH_DROP: 'rollups' } },
    { name: 'journal only (rows dropped)', entrypoint: DROPPING, env: {} },
    { name: 'written, answers not held for the journal', entrypoint: join(ROOT, 'bench', 'entrypoints', 'usage-no-wait.ts'), env: {} },
  );
}
// WRITER_ELSEWHERE=1 adds the real gateway with its usage writer thread moved to the other core (the
// one wrk and the stub use) after the warm-up: what the request thread pays when the writer does not
// share its core, as on any machine that gives the process two CPUs.
const WRITER_ELSEWHERE = 'usage written, writer thread on the other core';
if (process.env.WRITER_ELSEWHERE === '1') builds.push({ name: WRITER_ELSEWHERE, entrypoint: MAIN, env: {} });
// ONLY=<names, comma-separated, each a part of a build's name> keeps the first two builds and those.
if (process.env.ONLY !== undefined) {
  const wanted = process.env.ONLY.split(',');
  for (let index = builds.length - 1; index >= 2; index--) {
    if (!wanted.some((part) => (builds[index] as Build).name.includes(part))) builds.splice(index, 1);
  }
}
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SECONDS = Number(process.env.SECONDS ?? 6);

interface Run extends Build {
  process: PinnedProcess;
  url: string;
  rates: number[];
  p99s: number[];
  cpu: number[];
  threads: string[];
}

const directory = mkdtempSync(join(tmpdir(), 'keyway-usage-bench-'));
const stub = startStub(directory);
const runs: Run[] = builds.map((build, index) => ({
  ...build,
  ...startKeyway(`keyway-${index}`, build.entrypoint, join(directory, `keyway-${index}`), stub.port, build.env),
  rates: [],
  p99s: [],
  cpu: [],
  threads: [],
}));
try {
  const script = join(directory, 'chat.lua');
  writeWrkScript(script, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] }, BENCH_OPERATOR_KEY);
  for (const run of runs) {
    const notReady = await waitForHttp(`${run.url}/ready`, run.process, 30_000);
    if (notReady !== undefined) throw new Error(`${run.name}: ${notReady}`);
    await operatorCall(run.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
    await runWrk(`${run.url}/v1/chat/completions`, script, 2);
    if (run.name === WRITER_ELSEWHERE) moveThreads(run.process.pid, 'Worker', LOAD_CORE);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 0 ? [...runs].reverse() : runs;
    for (const run of order) {
      const before = cpuByThread(run.process.pid);
      const { rate, p99Ms, non2xx } = await runWrk(`${run.url}/v1/chat/completions`, script, SECONDS);
      if (non2xx > 0) throw new Error(`${run.name}: ${non2xx} requests were not answered 200`);
      // The writer drains its last batch within a flush interval after the load stops: count it.
      await Bun.sleep(1200);
      const cpu = cpuPerRequest(before, cpuByThread(run.process.pid), rate * SECONDS);
      const pending = await pendingRows(run.url);
      run.rates.push(rate);
      run.p99s.push(p99Ms);
      run.cpu.push(cpu.total);
      run.threads.push(cpu.threads);
      console.log(
        `round ${round} ${run.name.padEnd(40)} ${Math.round(rate)} req/s, p99 ${p99Ms.toFixed(2)} ms, ${cpu.total.toFixed(1)} µs CPU/request (${cpu.threads}), ${pending} rows pending after the drain`,
      );
    }
  }
  for (const run of runs) {
    console.log(
      `${run.name.padEnd(40)} median ${Math.round(median(run.rates))} req/s (rounds ${spread(run.rates)}), p99 median ${median(run.p99s).toFixed(2)} ms, ` +
        `CPU ${median(run.cpu).toFixed(1)} µs/request (rounds ${Math.min(...run.cpu).toFixed(1)}–${Math.max(...run.cpu).toFixed(1)})`,
    );
  }
  const [written, dropped] = runs;
  if (written !== undefined && dropped !== undefined) {
    console.log(
      `written / not written: ${((median(written.rates) / median(dropped.rates)) * 100).toFixed(1)}% throughput, ` +
        `+${(median(written.cpu) - median(dropped.cpu)).toFixed(1)} µs CPU per request`,
    );
  }
} finally {
  for (const run of runs) await stopProcess(run.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
