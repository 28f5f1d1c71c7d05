// CPU time of a process tree (every thread of the process and its children), from /proc: what a
// request costs in CPU holds steady when the machine is busy, where requests per second do not.

import { readdirSync, readFileSync } from 'node:fs';

function treePids(root: number): number[] {
  const pids = [root];
  for (const pid of pids) {
    try {
      for (const thread of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${thread}/children`, 'utf8').trim();
        if (children !== '') for (const child of children.split(/\s+/)) pids.push(Number(child));
      }
    } catch {
      // The process ended while it was read.
    }
  }
  return pids;
}

/** Nanoseconds on a CPU so far, by thread name ("main" for each process's first thread). */
export function cpuByThread(root: number): Map<string, number> {
  const totals = new Map<string, number>();
  for (const pid of treePids(root)) {
    try {
      for (const thread of readdirSync(`/proc/${pid}/task`)) {
        const running = Number(readFileSync(`/proc/${pid}/task/${thread}/schedstat`, 'utf8').split(' ')[0]);
        const name = thread === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${thread}/comm`, 'utf8').trim();
        totals.set(name, (totals.get(name) ?? 0) + running);
      }
    } catch {
      // The process ended while it was read.
    }
  }
  return totals;
}

/** Microseconds of CPU per request between two readings, in all and by thread (threads under 0.5 µs left out). */
export function cpuPerRequest(before: Map<string, number>, after: Map<string, number>, requests: number): { total: number; threads: string } {
  let total = 0;
  const threads: string[] = [];
  for (const [name, nanoseconds] of after) {
    const perRequest = (nanoseconds - (before.get(name) ?? 0)) / 1000 / requests;
    total += perRequest;
    if (perRequest >= 0.5) threads.push(`${name} ${perRequest.toFixed(1)}`);
  }
  return { total, threads: threads.join(', ') };
}
