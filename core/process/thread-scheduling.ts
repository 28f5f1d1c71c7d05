// Where the gateway's threads share a core (a container limited to one CPU, or the load bench's
// pinning), Linux lets a thread that wakes up preempt the one running. Bun's HTTP client thread wakes for
// every upstream request and response, so under load it cut into the request thread about 0.65 times
// a request, each time a pair of context switches and a cache the other thread then refills; the
// lower the request rate, the fewer requests each wake-up served, so every µs of request work cost
// about 2 µs in all (bench/ablation/work-price.ts). SCHED_BATCH is the ordinary time-sharing policy
// without wake-up preemption: such a thread runs when the request thread waits for work or at the end
// of its time slice, and then handles every socket that became ready meanwhile in one go. Its share
// of the CPU is unchanged (same weight), and with a core to itself it runs at once, as before. The
// usage writer thread (batch work by nature) sets it for itself. It needs no privilege: any thread may
// give up wake-up preemption for itself and its process's threads. bench/RESULTS.md (session 5) has
// the figures; KEYWAY_THREAD_SCHEDULING=default leaves every thread as the runtime made it.

import { readdirSync, readFileSync } from 'node:fs';

export const SCHED_BATCH = 3;

/** The runtime's threads that wait on sockets for the request thread: Bun's `fetch` I/O thread. */
export const HELPER_THREAD_NAMES: ReadonlySet<string> = new Set(['HTTP Client']);

export interface ThreadEntry {
  tid: number;
  name: string;
}

/** This process's threads whose name is in `names`, read from /proc/self/task (none where it cannot be read). */
export function threadsNamed(names: ReadonlySet<string>, taskDirectory = '/proc/self/task'): ThreadEntry[] {
  const found: ThreadEntry[] = [];
  let tids: string[];
  try {
    tids = readdirSync(taskDirectory);
  } catch {
    return found;
  }
  for (const tid of tids) {
    try {
      const name = readFileSync(`${taskDirectory}/${tid}/comm`, 'utf8').trim();
      if (names.has(name)) found.push({ tid: Number(tid), name });
    } catch {
      // The thread ended while the directory was read.
    }
  }
  return found;
}

/** A thread's scheduling policy from its /proc stat line (field 41, counted after the name's closing parenthesis). */
export function policyFromStat(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 3 onwards follow the name: field 41 is the 39th of them.
  const policy = Number(fields[38]);
  return Number.isInteger(policy) ? policy : undefined;
}

type SetScheduler = (tid: number, policy: number) => boolean;

let setScheduler: SetScheduler | null | undefined;

/** sched_setscheduler through libc, or null where it cannot be called (not Linux, another libc). */
async function loadSetScheduler(): Promise<SetScheduler | null> {
  if (setScheduler !== undefined) return setScheduler;
  setScheduler = null;
  if (process.platform !== 'linux') return setScheduler;
  try {
    const { dlopen, FFIType } = await import('bun:ffi');
    const libc = dlopen('libc.so.6', { sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
    // struct sched_param { int sched_priority; }: 0, the only priority the time-sharing policies take.
    // The array itself is passed (FFI takes its address at the call), so the closure keeps it alive: a
    // raw address taken once outlived the array it pointed into, and once a collection (the start-up
    // memory release) had reused that memory the kernel read a priority that was not 0 and refused.
    const parameters = new Int32Array(1);
    setScheduler = (tid, policy) => libc.symbols.sched_setscheduler(tid, policy, parameters) === 0;
  } catch {
    setScheduler = null;
  }
  return setScheduler;
}

/**
 * sched_yield through libc, or undefined where it cannot be called: the calling thread lets a thread
 * waiting for its core run first and then carries on; with none waiting it returns at once (a system
 * call, well under a µs). A long batch on a shared core calls it between steps, so a request never
 * waits for more than one step of it (SCHED_BATCH alone waits for the end of a time slice).
 */
export async function threadYielder(): Promise<(() => void) | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const { dlopen, FFIType } = await import('bun:ffi');
    const libc = dlopen('libc.so.6', { sched_yield: { args: [], returns: FFIType.i32 } });
    return () => {
      libc.symbols.sched_yield();
    };
  } catch {
    return undefined;
  }
}

/** Puts the calling thread under SCHED_BATCH (tid 0 is the caller); false where it could not. */
export async function batchScheduleCallingThread(): Promise<boolean> {
  const set = await loadSetScheduler();
  return set === null ? false : set(0, SCHED_BATCH);
}

/** Puts each of these threads under SCHED_BATCH; answers the ones that now are. */
export async function batchScheduleThreads(threads: readonly ThreadEntry[]): Promise<ThreadEntry[]> {
  if (threads.length === 0) return [];
  const set = await loadSetScheduler();
  if (set === null) return [];
  return threads.filter((thread) => set(thread.tid, SCHED_BATCH));
}

export interface HelperThreadWatch {
  stop(): void;
}

/**
 * Bun starts its HTTP client thread at the first `fetch`, so the helper threads are looked for every
 * `intervalMs` (a directory read of a dozen entries) until each named one has been found and set (or
 * refused: it is not tried again), then no more. The timer keeps no process alive.
 */
export function batchScheduleHelperThreads(
  options: { intervalMs?: number; names?: ReadonlySet<string>; onScheduled?: (threads: ThreadEntry[], refused: ThreadEntry[]) => void } = {},
): HelperThreadWatch {
  const names = options.names ?? HELPER_THREAD_NAMES;
  const tried = new Set<string>();
  let running = false;
  const check = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      if ((await loadSetScheduler()) === null) {
        clearInterval(timer);
        return;
      }
      const found = threadsNamed(names).filter((thread) => !tried.has(thread.name));
      if (found.length === 0) return;
      const scheduled = await batchScheduleThreads(found);
      for (const thread of found) tried.add(thread.name);
      options.onScheduled?.(
        scheduled,
        found.filter((thread) => !scheduled.includes(thread)),
      );
      if (tried.size >= names.size) clearInterval(timer);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void check(), options.intervalMs ?? 2000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
