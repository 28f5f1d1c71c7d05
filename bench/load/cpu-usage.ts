// How much of the machine went to something other than the benchmark while it ran. On a shared or
// virtual machine a compile running next door, or a hypervisor stealing time, shifts every figure, so
// the run reports it instead of letting it pass silently.

import { readFileSync, readdirSync } from 'node:fs';
import { servesBench } from './store-servers.ts';

export interface CpuSnapshot {
  /** Every tick on every core, in USER_HZ. */
  totalTicks: number;
  /** User, nice and system ticks: time some process ran. Interrupt time is left out since our own loopback traffic causes most of it. */
  processTicks: number;
  stealTicks: number;
  /** Ticks of this process, its reaped children (wrk runs) and its live descendants (stub, proxies). */
  benchTicks: number;
  /** Kernel threads (writeback, workqueues): left out of the foreign share since they mostly serve the benchmark's own I/O. */
  kernelTicks: number;
  /** Ticks of every other process, by "pid name", to name the culprits when the machine was busy. */
  otherProcesses: Map<string, number>;
}

export interface ForeignLoad {
  /** Share of the whole machine (all cores) used by processes outside the benchmark. */
  foreignPercent: number;
  /** Share of the whole machine the hypervisor took away. */
  stealPercent: number;
  /** The same outside use in scheduler ticks, to tell a real burst from rounding in a short window. */
  foreignTicks: number;
  /** Ticks of all cores over the window. */
  totalTicks: number;
  /** The busiest outside processes, "name (share%)". */
  topProcesses: string[];
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Fields of /proc/<pid>/stat after the parenthesised command name, which may itself hold spaces. */
function statFields(pid: string): string[] | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

function processTicks(): { bench: number; kernel: number; others: Map<string, number> } {
  const parents = new Map<string, string>();
  const ticks = new Map<string, number>();
  const names = new Map<string, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === undefined) continue;
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    parents.set(entry, fields[1] ?? '0');
    names.set(entry, /\((.*)\)/.exec(readText(`/proc/${entry}/stat`) ?? '')?.[1] ?? '?');
    ticks.set(entry, Number(fields[11] ?? 0) + Number(fields[12] ?? 0));
  }
  const self = String(process.pid);
  const selfFields = statFields(self);
  // Reaped children (finished wrk runs) are only in our own cutime/cstime.
  let bench = Number(selfFields?.[13] ?? 0) + Number(selfFields?.[14] ?? 0);
  const others = new Map<string, number>();
  let kernel = 0;
  for (const [pid, pidTicks] of ticks) {
    if (pid === '2' || parents.get(pid) === '2') {
      kernel += pidTicks;
      continue;
    }
    let ours = false;
    let ancestor: string | undefined = pid;
    for (let depth = 0; ancestor !== undefined && ancestor !== '0' && depth < 16 && !ours; depth++) {
      ours = ancestor === self;
      ancestor = parents.get(ancestor);
    }
    // The --stores Keyway's PostgreSQL and Redis serve the benchmark while it runs (store-servers.ts).
    if (ours || servesBench(names.get(pid) ?? '')) bench += pidTicks;
    else others.set(`${pid} ${names.get(pid) ?? '?'}`, pidTicks);
  }
  return { bench, kernel, others };
}

export function snapshotCpu(): CpuSnapshot {
  const processes = processTicks();
  const line = (readText('/proc/stat') ?? '').split('\n').find((candidate) => candidate.startsWith('cpu ')) ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return {
    totalTicks: user + nice + system + idle + iowait + irq + softirq + steal,
    processTicks: user + nice + system,
    stealTicks: steal,
    benchTicks: processes.bench,
    kernelTicks: processes.kernel,
    otherProcesses: processes.others,
  };
}

export function foreignLoad(before: CpuSnapshot, after: CpuSnapshot): ForeignLoad {
  const total = Math.max(1, after.totalTicks - before.totalTicks);
  const foreign = after.processTicks - before.processTicks - (after.benchTicks - before.benchTicks) - (after.kernelTicks - before.kernelTicks);
  const busiest = [...after.otherProcesses]
    .map(([name, ticks]): [string, number] => [name.replace(/^\d+ /, ''), ticks - (before.otherProcesses.get(name) ?? 0)])
    .filter(([, ticks]) => ticks > 0)
    .sort((left, right) => right[1] - left[1])
    .slice(0, 3);
  const topProcesses = busiest.map(([name, ticks]) => `${name} ${((100 * ticks) / total).toFixed(1)}%`);
  // Processes that started and ended between the snapshots (a compile, a test run) leave no trace in /proc.
  const named = [...after.otherProcesses].reduce((sum, [name, ticks]) => sum + Math.max(0, ticks - (before.otherProcesses.get(name) ?? 0)), 0);
  const vanished = Math.max(0, foreign - named);
  if ((100 * vanished) / total >= 1) topProcesses.push(`processes that exited meanwhile ${((100 * vanished) / total).toFixed(1)}%`);
  return {
    foreignPercent: Math.max(0, (100 * foreign) / total),
    stealPercent: (100 * (after.stealTicks - before.stealTicks)) / total,
    foreignTicks: Math.max(0, foreign),
    totalTicks: total,
    topProcesses,
  };
}

/** Machine-wide busy share over a short window, taken before the benchmark starts anything. */
export async function sampleForeignLoad(milliseconds: number): Promise<ForeignLoad> {
  const before = snapshotCpu();
  await Bun.sleep(milliseconds);
  return foreignLoad(before, snapshotCpu());
}
