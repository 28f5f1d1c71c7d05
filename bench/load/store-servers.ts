// The PostgreSQL and Redis servers behind the --stores Keyway. In a deployment they run on machines
// of their own; on the benchmark's two cores the scheduler may put them on the proxy core, where
// every tick they take is a tick the Keyway under test loses (Redis alone took 10–20 % of a core in
// the PostgreSQL + Redis team rounds). While the --stores Keyway runs they are pinned to the load
// core, beside the stub that stands in for the providers, and their CPU counts as the benchmark's
// own rather than as outside load. Their affinity is put back afterwards.

import { readdirSync, readFileSync } from 'node:fs';
import { LOAD_CORE, isPinningEnabled, readAllowedCores } from './processes.ts';

/** Process names of the servers the --stores Keyway uses (the machine's own PostgreSQL and Redis). */
export const STORE_SERVER_NAMES: readonly string[] = ['postgres', 'redis-server'];

const servingBench = new Set<string>();

/** Whether ticks of a process of this name are the benchmark's own (a store server in use). */
export function servesBench(name: string): boolean {
  return servingBench.has(name);
}

function pidsNamed(names: readonly string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let name: string;
    try {
      name = /\((.*)\)/.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'))?.[1] ?? '';
    } catch {
      continue;
    }
    if (names.includes(name)) pids.push(Number(entry));
  }
  return pids;
}

function setAffinity(pid: number, cores: string): boolean {
  return Bun.spawnSync(['taskset', '-a', '-cp', cores, String(pid)], { stdout: 'ignore', stderr: 'ignore' }).exitCode === 0;
}

/**
 * Pins every process of the store servers to the load core (new PostgreSQL backends inherit it from
 * the postmaster) and counts them as the benchmark's. Answers what was done, for the report, and
 * how to undo it: each process gets its cores back, and one started meanwhile (a backend) the cores
 * the servers had.
 */
export function pinStoreServers(): { pinned: string; restore: () => void } {
  for (const name of STORE_SERVER_NAMES) servingBench.add(name);
  const unpin = () => {
    for (const name of STORE_SERVER_NAMES) servingBench.delete(name);
  };
  if (!isPinningEnabled()) return { pinned: 'not pinned (pinning is off)', restore: unpin };
  const before = new Map<number, string>();
  for (const pid of pidsNamed(STORE_SERVER_NAMES)) before.set(pid, readAllowedCores(pid));
  const moved = [...before.keys()].filter((pid) => setAffinity(pid, String(LOAD_CORE)));
  const fallback = [...before.values()].find((cores) => cores !== '?') ?? '0-1';
  let restored = moved.length === 0;
  const restore = (): void => {
    unpin();
    if (restored) return;
    restored = true;
    for (const pid of pidsNamed(STORE_SERVER_NAMES)) {
      const cores = before.get(pid);
      setAffinity(pid, cores === undefined || cores === '?' ? fallback : cores);
    }
  };
  // An interrupted run must not leave the machine's servers on one core.
  process.once('exit', restore);
  return { pinned: moved.length === 0 ? 'not pinned (taskset was refused: not root?)' : `${LOAD_CORE} (${moved.length} processes)`, restore };
}
