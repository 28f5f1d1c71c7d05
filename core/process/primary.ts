// The primary process of KEYWAY_WORKERS=N (N > 1): it serves no request itself. It starts N workers
// (copies of this program) that listen on one port with SO_REUSEPORT, holds what they must share
// (counters, cluster leases, the bus: core/cluster/ipc-host.ts), restarts a worker that dies or stops
// answering (KEYWAY_WORKER_TIMEOUT_MS: core/cluster/ipc-liveness.ts), and drains them all on SIGTERM or SIGINT.
//
// Order of start: worker 1 starts alone and is the only process that migrates the database, creates
// the first-start keys (printing them once) and replays journals left by a previous run; the others
// start once it listens, on the port it got (KEYWAY_PORT=0 picks one), and find all of that done.
//
// A worker's start is timed (KEYWAY_WORKER_START_TIMEOUT_MS): one that has not listened by then (a key
// source, a database or a plugin's setup that never answers) is killed. During the start the primary
// then stops every worker and exits 1 with one line naming it: a start that hangs once hangs again,
// and the orchestrator's restart (with its back-off) and the operator's eyes are what it needs, not a
// silent loop here. A worker restarted later, while the others serve, is restarted again with the usual
// back-off, one error line each time. Before, the primary waited for ever: it never listened, or the
// restarted worker's share of the port was simply gone.

import type { Subprocess } from 'bun';
import { MemoryCounters } from '../counters/memory.ts';
import { ClusterHost, type HostedMember } from '../cluster/ipc-host.ts';
import { heartbeatFor } from '../cluster/ipc-liveness.ts';
import type { PrimaryBound } from '../cluster/ipc-protocol.ts';
import { flushLogs, type Logger } from '../logger.ts';
import { END_NOW_SIGNAL, WORKER_INDEX_VARIABLE } from './workers.ts';
import { stopSignals } from './repeated-signal.ts';

export interface PrimaryOptions {
  workers: number;
  /** The command that starts a worker: this program again (workers.ts selfCommand). */
  command: string[];
  env: Record<string, string | undefined>;
  host: string;
  port: number;
  /** A listening worker silent this long is killed (SIGKILL) and replaced; 0: never. */
  workerTimeoutMs: number;
  /** A worker not listening this long after its spawn is killed (SIGKILL); 0 or absent: never. */
  workerStartTimeoutMs?: number;
  logger: Logger;
}

interface Slot {
  index: number;
  generation: number;
  child: Subprocess | undefined;
  member: HostedMember | undefined;
  startedAt: number;
  /** The delay before the next restart; doubles while the worker keeps dying young. */
  restartDelayMs: number;
  listening: ((port: number) => void) | undefined;
}

/** A worker stopped before it listened during the start: the primary exits with its code (it printed why). */
export class WorkerStartError extends Error {
  override name = 'WorkerStartError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * A worker did not listen within KEYWAY_WORKER_START_TIMEOUT_MS during the start and was killed: it
 * printed nothing (it hangs), so the primary's one line says why the start stopped.
 */
export class WorkerStartTimeout extends Error {
  override name = 'WorkerStartTimeout';
}

const FIRST_RESTART_DELAY_MS = 250;
const MAX_RESTART_DELAY_MS = 10_000;
/** A worker that ran this long before dying is restarted promptly again. */
const HEALTHY_RUN_MS = 30_000;

/** Runs until stopped by a signal; resolves to the exit code: 0 when every worker drained cleanly. */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const slots: Slot[] = Array.from({ length: options.workers }, (_, offset) => ({
    index: offset + 1,
    generation: 0,
    child: undefined,
    member: undefined,
    startedAt: 0,
    restartDelayMs: FIRST_RESTART_DELAY_MS,
    listening: undefined,
  }));
  const slotOf = (member: string) => slots.find((candidate) => candidate.member !== undefined && memberId(candidate) === member);
  const host = new ClusterHost(new MemoryCounters(), {
    onListening: (member, port) => slotOf(member)?.listening?.(port),
    liveness: {
      heartbeatMs: heartbeatFor(options.workerTimeoutMs),
      timeoutMs: options.workerTimeoutMs,
      onSilent: (member, silentMs) => {
        const slot = slotOf(member);
        if (slot?.child === undefined) return;
        // Its listening socket keeps taking connections that wait as long as it does; its exit starts the usual restart.
        logger.error(
          { worker: slot.index, pid: slot.child.pid, silentMs, timeoutMs: options.workerTimeoutMs },
          `worker ${slot.index} did not answer for ${(silentMs / 1000).toFixed(1)} s (KEYWAY_WORKER_TIMEOUT_MS); killing it`,
        );
        slot.child.kill('SIGKILL');
      },
    },
  });
  let port = options.port;
  let stopping = false;
  let signals = 0;
  /** Workers that exited otherwise than with code 0 while draining: the primary's exit code says so. */
  let uncleanStops = 0;
  let started = false;

  const startTimeoutMs = options.workerStartTimeoutMs ?? 0;
  const spawn = (slot: Slot): Promise<number> => {
    slot.generation += 1;
    slot.startedAt = Date.now();
    const member = memberId(slot);
    const { promise: listening, resolve } = Promise.withResolvers<number>();
    let timedOut: string | undefined;
    // Kept while stopping too: a worker hung in its start may never act on the SIGTERM it was sent.
    const startTimer =
      startTimeoutMs <= 0
        ? undefined
        : setTimeout(() => {
            if (slot.child !== child) return;
            timedOut = `worker ${slot.index} (pid ${child.pid}) did not listen within ${seconds(startTimeoutMs)} (KEYWAY_WORKER_START_TIMEOUT_MS)`;
            // During the start the one line is the refusal main.ts prints; later, this is it.
            if (started) logger.error({ worker: slot.index, pid: child.pid, timeoutMs: startTimeoutMs }, `${timedOut}; killing it`);
            child.kill('SIGKILL');
          }, startTimeoutMs);
    slot.listening = (port) => {
      clearTimeout(startTimer);
      resolve(port);
    };
    const child = Bun.spawn(options.command, {
      env: { ...options.env, [WORKER_INDEX_VARIABLE]: String(slot.index), KEYWAY_PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit'],
      serialization: 'json',
      ipc: (message) => slot.member?.receive(message as PrimaryBound),
    });
    slot.child = child;
    slot.member = host.join(
      member,
      (message) => {
        try {
          child.send(message);
        } catch {
          // The worker is exiting; its exit is handled below.
        }
      },
      slot.index,
    );
    const exited = child.exited.then((code) => {
      clearTimeout(startTimer);
      const signal = child.signalCode === null ? null : String(child.signalCode);
      slot.member?.leave();
      slot.member = undefined;
      slot.child = undefined;
      onExit(slot, code, signal);
      if (timedOut !== undefined) {
        return Promise.reject(new WorkerStartTimeout(`${timedOut}: it was killed${started ? '' : ' and the start stopped'}.`));
      }
      const why = `worker ${slot.index} exited with ${describeExit(code, signal)} before it listened`;
      return Promise.reject(new WorkerStartError(why, typeof code === 'number' && code !== 0 ? code : 1));
    });
    return Promise.race([listening, exited]);
  };

  const onExit = (slot: Slot, code: number | null, signal: string | null): void => {
    if (stopping && started && code !== 0) {
      uncleanStops += 1;
      logger.error({ worker: slot.index, exit: describeExit(code, signal) }, `worker ${slot.index} did not stop cleanly`);
    }
    if (stopping || !started) return;
    const lived = Date.now() - slot.startedAt;
    const delay = lived >= HEALTHY_RUN_MS ? FIRST_RESTART_DELAY_MS : slot.restartDelayMs;
    slot.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, delay * 2);
    logger.warn({ worker: slot.index, exit: describeExit(code, signal), restartInMs: delay }, `worker ${slot.index} stopped; restarting it`);
    setTimeout(() => {
      if (stopping) return;
      spawn(slot).then(
        () => logger.info({ worker: slot.index, pid: slot.child?.pid }, `worker ${slot.index} is back`),
        (error: unknown) => logger.error({ worker: slot.index, error: (error as Error).message }, 'a restarted worker failed to start'),
      );
    }, delay);
  };

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const slot of slots) slot.child?.kill(signal);
  };

  const arrivals = stopSignals();
  const shutdown = (signal: string): void => {
    if (arrivals.next() === 'copy') return;
    signals += 1;
    stopping = true;
    // Every worker drains once on the first signal; a second one ends their in-flight requests now.
    logger.info({ signal, workers: slots.filter((slot) => slot.child !== undefined).length }, signals > 1 ? 'stopping workers now' : 'draining workers');
    stopAll(signals > 1 ? END_NOW_SIGNAL : 'SIGTERM');
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    const [first, ...rest] = slots;
    port = await spawn(first as Slot);
    await Promise.all(rest.map((slot) => spawn(slot)));
  } catch (error) {
    const asked = signals > 0;
    stopping = true;
    stopAll('SIGTERM');
    await Promise.all(slots.map((slot) => slot.child?.exited));
    host.close();
    // Stopped by the operator while starting: not a failed start.
    if (asked) return 0;
    throw error;
  }
  started = true;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  logger.info({ url, workers: options.workers, pids: slots.map((slot) => slot.child?.pid) }, `Keyway listening on ${url}`);
  if (stopping) stopAll('SIGTERM');
  await untilStopped(slots, () => stopping);
  host.close();
  logger.info({ uncleanStops }, 'stopped');
  await flushLogs(logger);
  return uncleanStops === 0 ? 0 : 1;
}

/** Resolves once a stop was asked for and every worker has exited. */
async function untilStopped(slots: Slot[], stopping: () => boolean): Promise<void> {
  for (;;) {
    const running = slots.map((slot) => slot.child?.exited).filter((exited) => exited !== undefined);
    if (stopping() && running.length === 0) return;
    await Promise.race([...running, Bun.sleep(500)]);
  }
}

function memberId(slot: Slot): string {
  return `worker-${slot.index}.${slot.generation}`;
}

/** `5 s`, `2.5 s`, `300 s`: what the timeout line says. */
function seconds(milliseconds: number): string {
  return `${Number((milliseconds / 1000).toFixed(1))} s`;
}

function describeExit(code: number | null, signal: string | null): string {
  return signal !== null ? `signal ${signal}` : `code ${String(code)}`;
}
