// How many worker processes serve the port (KEYWAY_WORKERS), decided before anything else loads.
// Pure: the entry point passes in the facts (environment, platform, cores) and acts on the answer.
// Light, like fetch-capacity.ts: the primary process reads this without loading the gateway.

import { isCompiledBinary } from './fetch-capacity.ts';

export const WORKERS_VARIABLE = 'KEYWAY_WORKERS';
/** Set by the primary in each worker's environment: the worker's number, 1 to N. Not for operators. */
export const WORKER_INDEX_VARIABLE = 'KEYWAY_WORKER_INDEX';
/**
 * What the primary sends its workers for a second shutdown signal: requests in flight end at once. Not
 * a second SIGTERM, because a worker cannot tell one from the group's: a signal sent to the process group
 * (systemd's default KillMode=control-group, `timeout`) reaches each worker directly and again through
 * the primary, and that is one stop.
 */
export const END_NOW_SIGNAL: NodeJS.Signals = 'SIGUSR2';
/** More would only add processes contending for the same cores and the one database file. */
export const MAX_WORKERS = 256;

export interface WorkerFacts {
  env: Readonly<Record<string, string | undefined>>;
  /** process.platform: the kernel spreads connections over reusePort listeners on Linux only. */
  platform: string;
  /** The cores this process may run on: os.availableParallelism(), capped by a cgroup CPU quota (cpuQuotaCores). */
  cores: number;
  /** KEYWAY_DATABASE_URL as the configuration resolved it. */
  databaseUrl: string;
}

export interface WorkerPlan {
  workers: number;
  /** Why the count differs from what was asked or what the default would give; logged at start. */
  note?: string;
}

function databaseIsPrivateMemory(url: string): boolean {
  return url === ':memory:' || url === 'file::memory:';
}

/**
 * KEYWAY_WORKERS: a count from 1 to 256, or `auto` (the default): one per core on Linux, one
 * elsewhere (other kernels do not balance a shared port), and one for an in-memory database (each
 * process would have its own). Throws for a value that is neither, or for several workers on an
 * in-memory database or outside Linux, where they cannot work as one gateway.
 */
export function planWorkers(facts: WorkerFacts): WorkerPlan {
  const raw = facts.env[WORKERS_VARIABLE]?.trim() ?? '';
  const automatic = raw === '' || raw.toLowerCase() === 'auto';
  const asked = automatic ? undefined : Number(raw);
  if (asked !== undefined && (!Number.isInteger(asked) || asked < 1 || asked > MAX_WORKERS)) {
    throw new Error(`${WORKERS_VARIABLE} must be auto or an integer between 1 and ${MAX_WORKERS}; got ${JSON.stringify(raw)}.`);
  }
  if (asked !== undefined) {
    if (asked > 1 && facts.platform !== 'linux') {
      throw new Error(`${WORKERS_VARIABLE}=${asked} needs Linux (the kernel shares one port between processes there only); use 1 here.`);
    }
    if (asked > 1 && databaseIsPrivateMemory(facts.databaseUrl)) {
      throw new Error(`${WORKERS_VARIABLE}=${asked} needs a database the processes share; an in-memory database belongs to one process.`);
    }
    return { workers: asked };
  }
  if (facts.platform !== 'linux') return { workers: 1, note: 'one worker: the port is shared between processes on Linux only' };
  if (databaseIsPrivateMemory(facts.databaseUrl)) return { workers: 1, note: 'one worker: an in-memory database belongs to one process' };
  return { workers: Math.max(1, Math.min(MAX_WORKERS, Math.floor(facts.cores))) };
}

/**
 * The cores a cgroup CPU quota allows, rounded up, or undefined when there is none: cgroup v2's
 * `cpu.max` ("max 100000" or "200000 100000"), or cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us`
 * joined by a space ("-1 100000" when unlimited). A container limited to two CPUs on a 64-core host
 * sees 64 cores in os.availableParallelism(); its quota says two.
 */
export function cpuQuotaCores(text: string | undefined): number | undefined {
  const [quota, period] = (text ?? '').trim().split(/\s+/).map(Number);
  if (quota === undefined || period === undefined || !Number.isFinite(quota) || !Number.isFinite(period)) return undefined;
  if (quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** This process's worker number when the primary started it, else undefined (the primary, or a lone process). */
export function workerIndex(env: WorkerFacts['env']): number | undefined {
  const value = Number(env[WORKER_INDEX_VARIABLE]);
  return Number.isInteger(value) && value >= 1 ? value : undefined;
}

/**
 * The command that starts another copy of this program: the same Bun, runtime flags and script from
 * source; the binary itself when compiled (its script path lives in Bun's embedded file system).
 */
export function selfCommand(argv: readonly string[], execArgv: readonly string[], execPath: string): string[] {
  return isCompiledBinary(argv) ? [execPath, ...argv.slice(2)] : [execPath, ...execArgv, ...argv.slice(1)];
}
