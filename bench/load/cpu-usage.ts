// How much of the machine went to something other than the benchmark while it ran. On a shared or
// virtual machine a compile running next door, or a hypervisor stealing time, shifts every figure, so
// the run reports it instead of letting it pass silently.

import { readFileSync, readdirSync } from 'node:fs';

export interface CpuSnapshot {
  /** Every tick on every core, in USER_HZ. */
  totalTicks: number;
  /** User, nice and system ticks: time some process ran. Interrupt time is left out since our own loopback traffic causes most of it. */
  processTicks: number;
  stealTicks: number;
  /** Ticks of this process, its reaped children (wrk runs) and its live descendants (stub, proxies). */
  benchTicks: number;
}

export interface ForeignLoad {
  /** Share of the whole machine (all cores) used by processes outside the benchmark. */
  foreignPercent: number;
  /** Share of the whole machine the hypervisor took away. */
  stealPercent: number;
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

function benchTicks(): number {
  const parents = new Map<string, string>();
  const ticks = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === undefined) continue;
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    parents.set(entry, fields[1] ?? '0');
    ticks.set(entry, Number(fields[11] ?? 0) + Number(fields[12] ?? 0));
  }
  const self = String(process.pid);
  const selfFields = statFields(self);
  // Reaped children (finished wrk runs) are only in our own cutime/cstime.
  let total = Number(selfFields?.[13] ?? 0) + Number(selfFields?.[14] ?? 0);
  for (const [pid, pidTicks] of ticks) {
    let ancestor: string | undefined = pid;
    for (let depth = 0; ancestor !== undefined && ancestor !== '0' && depth < 16; depth++) {
      if (ancestor === self) {
        total += pidTicks;
        break;
      }
      ancestor = parents.get(ancestor);
    }
  }
  return total;
}

export function snapshotCpu(): CpuSnapshot {
  const line = (readText('/proc/stat') ?? '').split('\n').find((candidate) => candidate.startsWith('cpu ')) ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return {
    totalTicks: user + nice + system + idle + iowait + irq + softirq + steal,
    processTicks: user + nice + system,
    stealTicks: steal,
    benchTicks: benchTicks(),
  };
}

export function foreignLoad(before: CpuSnapshot, after: CpuSnapshot): ForeignLoad {
  const total = Math.max(1, after.totalTicks - before.totalTicks);
  const foreign = after.processTicks - before.processTicks - (after.benchTicks - before.benchTicks);
  return {
    foreignPercent: Math.max(0, (100 * foreign) / total),
    stealPercent: (100 * (after.stealTicks - before.stealTicks)) / total,
  };
}

/** Machine-wide busy share over a short window, taken before the benchmark starts anything. */
export async function sampleForeignLoad(milliseconds: number): Promise<ForeignLoad> {
  const before = snapshotCpu();
  await Bun.sleep(milliseconds);
  return foreignLoad(before, snapshotCpu());
}
