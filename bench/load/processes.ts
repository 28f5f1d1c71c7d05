// Child processes of the benchmark: started pinned to a core, watched, and always stopped on exit.

import type { Subprocess } from 'bun';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface PinnedProcess {
  name: string;
  pid: number;
  subprocess: Subprocess;
  logPath: string;
}

const children = new Set<PinnedProcess>();
/** Short-lived load generators (wrk runs), killed with the rest if the benchmark is interrupted. */
const transients = new Set<Subprocess>();

export function trackTransient(subprocess: Subprocess): () => void {
  transients.add(subprocess);
  return () => transients.delete(subprocess);
}

/** The core the stub and load generator run on, and the core every proxy under test gets. */
export const LOAD_CORE = 0;
export const PROXY_CORE = 1;

// KEYWAY_BENCH_UNPINNED=1 runs every process on every core, as a deployment that shares one machine
// would: the figures then include the scheduler's choices, which pinning keeps out.
const UNPINNED = process.env.KEYWAY_BENCH_UNPINNED === '1';
let pinningEnabled = !UNPINNED;

export function onlineCoreCount(): number {
  return readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('processor')).length;
}

/** Puts every thread of this process (the load generator) on the load core; later threads inherit it. */
export function pinSelf(): boolean {
  if (UNPINNED || onlineCoreCount() < 2 || Bun.which('taskset') === null) {
    pinningEnabled = false;
    return false;
  }
  const result = Bun.spawnSync(['taskset', '-a', '-cp', String(LOAD_CORE), String(process.pid)], { stdout: 'ignore', stderr: 'pipe' });
  pinningEnabled = result.exitCode === 0;
  return pinningEnabled;
}

/**
 * Pins children (and wrk) when the machine can, without pinning this process: for a caller that
 * shares its process with other work, such as the test runner.
 */
export function pinChildrenOnly(): boolean {
  pinningEnabled = !UNPINNED && onlineCoreCount() >= 2 && Bun.which('taskset') !== null;
  return pinningEnabled;
}

export function isPinningEnabled(): boolean {
  return pinningEnabled;
}

/** Prefixes a command with `taskset -c <core>` when pinning is on; taskset execs, so the pid stays the command's. */
export function pinnedCommand(core: number, command: string[]): string[] {
  return pinningEnabled ? ['taskset', '-c', String(core), ...command] : command;
}

export function startPinned(name: string, core: number, command: string[], environment: Record<string, string>, logPath: string): PinnedProcess {
  const subprocess = Bun.spawn(pinnedCommand(core, command), {
    env: { ...process.env, ...environment },
    stdout: Bun.file(logPath),
    stderr: Bun.file(`${logPath}.stderr`),
    stdin: 'ignore',
  });
  const child: PinnedProcess = { name, pid: subprocess.pid, subprocess, logPath };
  children.add(child);
  return child;
}

export async function stopProcess(child: PinnedProcess): Promise<void> {
  if (!children.delete(child)) return;
  if (child.subprocess.exitCode !== null || child.subprocess.signalCode !== null) return;
  child.subprocess.kill('SIGTERM');
  const exited = await Promise.race([child.subprocess.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
  if (!exited) child.subprocess.kill('SIGKILL');
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((child) => stopProcess(child)));
}

/**
 * Synchronous last resort for exit handlers, where nothing can be awaited. SIGTERM, not SIGKILL: an
 * nginx master killed outright leaves its worker behind, while on SIGTERM it takes the worker down.
 */
export function killAllChildrenNow(): void {
  for (const child of children) {
    try {
      child.subprocess.kill('SIGTERM');
    } catch {
      // Already gone.
    }
  }
  children.clear();
  for (const subprocess of transients) {
    try {
      subprocess.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  transients.clear();
}

export function hasExited(child: PinnedProcess): boolean {
  return child.subprocess.exitCode !== null || child.subprocess.signalCode !== null;
}

/** The tail of a child's stdout and stderr, for a failure message. */
export function logTail(child: PinnedProcess, characters = 1500): string {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const text = `${read(child.logPath)}${read(`${child.logPath}.stderr`)}`.trim();
  return text.length > characters ? `…${text.slice(-characters)}` : text;
}

/** A port the kernel just handed out; the tiny race until a child binds it is acceptable on loopback. */
export function findFreePort(): number {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() });
  const port = server.port;
  server.stop(true);
  if (port === undefined) throw new Error('could not obtain a free port');
  return port;
}

/** Polls `url` until it answers `expectedStatus`, the child dies, or `timeoutMs` passes. */
export async function waitForHttp(
  url: string,
  child: PinnedProcess,
  timeoutMs: number,
  expectedStatus = 200,
  headers: Record<string, string> = {},
): Promise<string | undefined> {
  const deadline = performance.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  while (performance.now() < deadline) {
    if (hasExited(child)) return `${child.name} exited with code ${child.subprocess.exitCode ?? child.subprocess.signalCode}`;
    try {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === expectedStatus) return undefined;
      lastProblem = `status ${response.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await Bun.sleep(100);
  }
  return `${child.name} not ready at ${url} after ${timeoutMs} ms (${lastProblem})`;
}

/** Resident set size of a process in KiB, from /proc/<pid>/status. */
export function readRssKibibytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/**
 * The lowest RSS over a short window after load stops. A single reading lands before or after a
 * garbage collection by chance and can swing by tens of MiB; the floor over the window is what the
 * process keeps, which is what a leak would raise.
 */
export async function settledRssKibibytes(pid: number, windowMs = 2000, intervalMs = 200): Promise<number | undefined> {
  let lowest: number | undefined;
  for (let elapsed = 0; elapsed <= windowMs; elapsed += intervalMs) {
    if (elapsed > 0) await Bun.sleep(intervalMs);
    const reading = readRssKibibytes(pid);
    if (reading !== undefined && (lowest === undefined || reading < lowest)) lowest = reading;
  }
  return lowest;
}

/** The cores a process may run on, as the kernel reports them, to prove the pinning took. */
export function readAllowedCores(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

const PASSTHROUGH_ENTRY = resolve(import.meta.dir, '..', 'bun-passthrough.ts');

/** The 30-line Bun pass-through (bench/bun-passthrough.ts) on the proxy core, forwarding to the stub on `stubPort`. */
export function startPassthrough(name: string, stubPort: number, logPath: string): { process: PinnedProcess; port: number } {
  const port = findFreePort();
  const started = startPinned(
    name,
    PROXY_CORE,
    [process.execPath, PASSTHROUGH_ENTRY],
    { PASSTHROUGH_PORT: String(port), PASSTHROUGH_UPSTREAM: `http://127.0.0.1:${stubPort}` },
    logPath,
  );
  return { process: started, port };
}
