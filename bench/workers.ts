// bun bench/workers.ts — requests per second at c=64 with KEYWAY_WORKERS=1 against KEYWAY_WORKERS=2
// (or the counts in KEYWAY_BENCH_WORKERS), with the operator key (no policies) and with a member of the
// seed's team (a budget reservation per request: one IPC round trip to the primary), interleaved
// rounds, medians. Each layout says which cores the load (wrk and the upstream stub) and Keyway get:
//
//   split   the load on core 0, Keyway (every worker) on core 1: no extra core for the second worker,
//           so the ratio is the cost of the worker machinery, not scaling.
//   shared  everything on cores 0-1: two workers can use both cores, but wrk and the stub take their
//           share of the same two; the gain is a floor of what a machine with spare cores sees.
//   custom  KEYWAY_BENCH_LOAD_CORES=0 KEYWAY_BENCH_PROXY_CORES=1-2 (taskset lists): the method for a
//           machine with at least three cores, where the load has its own and scaling is measured clean.
//
// KEYWAY_BENCH_LAYOUTS=split,shared picks the layouts (default: custom when the variables are set, else
// split and shared). Figures taken on a shared machine are indicative (bench/RESULTS.md has the method).

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { benchKeywayEnvironment, median, prepareTeamScripts, ROOT, spread } from './load/pinned-keyway.ts';
import { findFreePort } from './load/processes.ts';

const ROUNDS = Number(process.env.KEYWAY_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.KEYWAY_BENCH_SECONDS ?? 5);
const WORKER_COUNTS = (process.env.KEYWAY_BENCH_WORKERS ?? '1,2').split(',').map(Number);
const BODY = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] };

interface Layout {
  name: string;
  loadCores: string;
  proxyCores: string;
}

function layouts(): Layout[] {
  const load = process.env.KEYWAY_BENCH_LOAD_CORES;
  const proxy = process.env.KEYWAY_BENCH_PROXY_CORES;
  const known: Record<string, Layout> = {
    split: { name: 'split (load core 0, Keyway core 1)', loadCores: '0', proxyCores: '1' },
    shared: { name: 'shared (load and Keyway on cores 0-1)', loadCores: '0-1', proxyCores: '0-1' },
    ...(load !== undefined && proxy !== undefined ? { custom: { name: `custom (load ${load}, Keyway ${proxy})`, loadCores: load, proxyCores: proxy } } : {}),
  };
  const names = (process.env.KEYWAY_BENCH_LAYOUTS ?? (known.custom !== undefined ? 'custom' : 'split,shared')).split(',');
  return names.map((name) => {
    const layout = known[name.trim()];
    if (layout === undefined) throw new Error(`unknown layout ${name} (known: ${Object.keys(known).join(', ')})`);
    return layout;
  });
}

const children = new Set<Subprocess>();

function spawnPinned(cores: string, command: string[], env: Record<string, string>, logPath: string): Subprocess {
  const child = Bun.spawn(['taskset', '-c', cores, ...command], {
    env: { ...process.env, ...env },
    stdout: Bun.file(logPath),
    stderr: Bun.file(`${logPath}.stderr`),
    stdin: 'ignore',
  });
  children.add(child);
  return child;
}

async function stop(child: Subprocess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await Promise.race([child.exited.then(() => true), Bun.sleep(15_000).then(() => false)]))) child.kill('SIGKILL');
}

async function wrk(cores: string, url: string, script: string, seconds: number): Promise<{ rate: number; non2xx: number }> {
  const child = Bun.spawn(['taskset', '-c', cores, 'wrk', '-t1', '-c64', `-d${seconds}s`, '-s', script, url], { stdout: 'pipe', stderr: 'pipe' });
  const text = await new Response(child.stdout).text();
  await child.exited;
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 'NaN');
  const socketErrors = /Socket errors:[^\n]*/.exec(text)?.[0];
  if (!(rate > 0) || socketErrors !== undefined) throw new Error(`wrk against ${url}: ${socketErrors ?? 'no request answered'}\n${text}`);
  return { rate, non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? '0') };
}

/** Waits for the line the primary (or a lone process) logs once every worker listens. */
async function untilListening(logPath: string, child: Subprocess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Keyway exited: ${readFileSync(`${logPath}.stderr`, 'utf8').slice(-2000)}`);
    let text = '';
    try {
      text = readFileSync(logPath, 'utf8');
    } catch {
      // Not written yet.
    }
    if (text.includes('"msg":"Keyway listening')) return;
    await Bun.sleep(50);
  }
  throw new Error(`Keyway did not listen within a minute (${logPath})`);
}

interface Subject {
  workers: number;
  url: string;
  child: Subprocess;
  operatorScript: string;
  memberScript: string;
  rates: { operator: number[]; member: number[] };
}

async function startSubject(directory: string, layout: Layout, workers: number, stubPort: number): Promise<Subject> {
  const dataDirectory = join(directory, `keyway-${workers}`);
  mkdirSync(dataDirectory, { recursive: true });
  const port = findFreePort();
  const logPath = join(dataDirectory, 'keyway.out');
  const child = spawnPinned(
    layout.proxyCores,
    [process.execPath, join(ROOT, 'plugins', 'main.ts')],
    { ...benchKeywayEnvironment(dataDirectory, port, stubPort, 'info'), KEYWAY_WORKERS: String(workers) },
    logPath,
  );
  await untilListening(logPath, child);
  const url = `http://127.0.0.1:${port}`;
  const operatorScript = join(dataDirectory, 'operator.lua');
  const memberScript = join(dataDirectory, 'member.lua');
  await prepareTeamScripts(url, BODY, { operator: operatorScript, member: memberScript });
  // Every worker knows the new team before the first round.
  await Bun.sleep(500);
  return { workers, url, child, operatorScript, memberScript, rates: { operator: [], member: [] } };
}

async function measure(layout: Layout): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-workers-bench-'));
  const stubPort = findFreePort();
  const stub = spawnPinned(
    layout.loadCores,
    [process.execPath, join(ROOT, 'bench', 'upstream-stub.ts')],
    { STUB_PORT: String(stubPort) },
    join(directory, 'stub.out'),
  );
  const subjects: Subject[] = [];
  try {
    for (const workers of WORKER_COUNTS) subjects.push(await startSubject(directory, layout, workers, stubPort));
    console.log(`\n${layout.name}: ${ROUNDS} rounds of ${SECONDS} s, wrk -t1 -c64 on cores ${layout.loadCores}`);
    for (const subject of subjects) {
      await wrk(layout.loadCores, `${subject.url}/v1/chat/completions`, subject.operatorScript, 2);
      await wrk(layout.loadCores, `${subject.url}/v1/chat/completions`, subject.memberScript, 2);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 0 ? [...subjects].reverse() : subjects;
      for (const subject of order) {
        for (const kind of ['operator', 'member'] as const) {
          const script = kind === 'operator' ? subject.operatorScript : subject.memberScript;
          const { rate, non2xx } = await wrk(layout.loadCores, `${subject.url}/v1/chat/completions`, script, SECONDS);
          if (non2xx > 0) throw new Error(`${subject.workers} workers, ${kind}: ${non2xx} requests were not answered 200`);
          subject.rates[kind].push(rate);
          console.log(
            `round ${round}  workers=${subject.workers}  ${kind === 'operator' ? 'operator key      ' : 'seed team member  '} ${Math.round(rate)} req/s`,
          );
        }
      }
    }
    const base = subjects[0] as Subject;
    for (const subject of subjects) {
      const cells = (['operator', 'member'] as const).map((kind) => {
        const value = median(subject.rates[kind]);
        return `${kind} ${Math.round(value)} req/s (${spread(subject.rates[kind])}, ×${(value / median(base.rates[kind])).toFixed(2)})`;
      });
      console.log(`median  workers=${subject.workers}  ${cells.join('   ')}`);
    }
  } finally {
    for (const subject of subjects) await stop(subject.child);
    await stop(stub);
    rmSync(directory, { recursive: true, force: true });
  }
}

process.on('SIGINT', () => {
  for (const child of children) child.kill('SIGTERM');
  process.exit(130);
});

if (Bun.which('taskset') === null || Bun.which('wrk') === null) throw new Error('bench/workers.ts needs taskset and wrk');
for (const layout of layouts()) await measure(layout);
