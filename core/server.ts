import { ConfigError } from './config.ts';
import { createApp } from './http/app.ts';
import { errorAsResponse, newRequestId } from './http/kit/respond.ts';
import { flushLogs } from './logger.ts';
import { createWebSocketHub } from './http/websocket.ts';
import type { Runtime } from './runtime.ts';
import { batchScheduleHelperThreads, type HelperThreadWatch } from './process/thread-scheduling.ts';
import { stopSignals } from './process/repeated-signal.ts';

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting requests, lets in-flight ones finish, flushes usage, closes storage. */
  stop(): Promise<void>;
}

export interface ServerOptions {
  /**
   * This process is worker `worker` of several serving one port (KEYWAY_WORKERS, core/process/primary.ts):
   * the port is opened with SO_REUSEPORT so the kernel spreads connections over the workers, and each
   * answer names the worker in `X-Keyway-Worker`.
   */
  worker?: number;
}

/**
 * Bun's HTTP client thread gives up wake-up preemption once it exists (KEYWAY_THREAD_SCHEDULING=batch,
 * the default; core/process/thread-scheduling.ts says why): on a core it shares with the request
 * thread it then handles its sockets in batches instead of cutting into each request.
 */
function scheduleHelperThreads(runtime: Runtime): HelperThreadWatch | undefined {
  if (runtime.config.threadScheduling !== 'batch') return undefined;
  return batchScheduleHelperThreads({
    onScheduled: (scheduled, refused) =>
      runtime.logger.debug(
        { scheduled: scheduled.map((thread) => thread.name), refused: refused.map((thread) => thread.name) },
        'helper threads under SCHED_BATCH (no wake-up preemption)',
      ),
  });
}

/** Why the port could not be opened, naming the variable to change (Bun says "Is port 8080 in use?" with a stack). */
function listenFailure(error: unknown, host: string, port: number): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') return `KEYWAY_PORT ${port} is already in use on ${host} (KEYWAY_HOST): stop what listens there, or set another port.`;
  if (code === 'EACCES') return `KEYWAY_PORT ${port} needs a privilege this process lacks (ports below 1024): set a port of 1024 or more.`;
  if (code === 'EADDRNOTAVAIL' || code === 'EINVAL' || code === 'ENOTFOUND' || code?.startsWith('EAI_') === true) {
    return `KEYWAY_HOST ${host} is not an address of this machine, nor a name that resolves to one (${code}): set one of its addresses, or 0.0.0.0 for all.`;
  }
  return `Keyway could not listen on ${where} (KEYWAY_HOST, KEYWAY_PORT): ${(error as Error | undefined)?.message ?? String(error)}`;
}

export function startServer(runtime: Runtime, options: ServerOptions = {}): RunningServer {
  const sockets = createWebSocketHub();
  const app = createApp(runtime, sockets, { worker: options.worker });
  const { host, port: configuredPort } = runtime.config;
  try {
    app.listen({
      reusePort: options.worker !== undefined,
      hostname: host,
      port: configuredPort,
      // Keyway's reader decides every body's fate, so an oversized one always gets the spec's 413: it
      // refuses a declared length over KEYWAY_MAX_BODY_BYTES before reading a byte and stops reading an
      // undeclared one at the limit (core/http/kit/body.ts). Bun's own limit would answer first with
      // a bare 413 of its own, so it is set out of reach; Bun never buffers a body nobody reads.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      idleTimeout: 255,
      // Bun's developer error page shows stack frames, source lines and the install path to whoever
      // caused the error (Elysia asks for it unless NODE_ENV=production): never. An error no handler
      // caught (QA17: the 404 handler's own throw on a request without a Host) is the spec's 500.
      development: false,
      error: (error) => errorAsResponse(error, newRequestId(), runtime.logger),
      // WebSocket routes (RouteDefinition.websocket): a frame is a request body, under the same limit.
      websocket: sockets.serverHandlers(runtime.config.maxBodyBytes),
    });
  } catch (error) {
    runtime.announceFirstStart(true);
    throw new ConfigError(listenFailure(error, host, configuredPort));
  }
  const server = app.server;
  if (server === null) throw new Error('the HTTP server did not start');
  const port = server.port as number;
  // No upstream may be Keyway itself: its own port on this machine is refused (core/wire/upstream-policy.ts).
  runtime.upstream.listening(port);
  runtime.announceFirstStart();
  runtime.startBackground();
  const helperThreads = scheduleHelperThreads(runtime);
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${runtime.config.host.includes(':') ? `[${runtime.config.host}]` : runtime.config.host}:${port}`,
    port,
    stop: () => {
      stopping ??= (async () => {
        // The one deadline of the whole drain: the jobs' drains (alert deliveries under way) end by it too.
        const deadline = Date.now() + runtime.config.drainTimeoutMs;
        helperThreads?.stop();
        runtime.stopBackground();
        // Requests still in flight at the deadline end (a stream with an error event, the rest with a 503), booked once (core/lifecycle/drain.ts).
        runtime.drain.start(runtime.config.drainTimeoutMs);
        const stopped = server.stop(false);
        // Bun's stop waits for open WebSockets too: each closes once its in-flight work has ended.
        await sockets.closeAll();
        await stopped;
        runtime.closeUpstreamClient();
        runtime.drain.dispose();
        await runtime.usage.close();
        await runtime.drainJobs(deadline);
        await runtime.counters.close?.();
        await runtime.cluster.close?.();
        runtime.store.close();
      })();
      return stopping;
    },
  };
}

export interface SignalOptions {
  /** Whether a repeat of one of `signals` ends the requests in flight at once (a single process: yes; a worker: no). */
  repeatEndsNow?: boolean;
  /** Signals that end the requests in flight at once, starting the drain first if it had not begun. */
  endNow?: readonly NodeJS.Signals[];
  /** Runs once the server has stopped, before the exit (the entry point gives back its instance lease there). */
  afterStop?: () => Promise<void>;
}

/**
 * SIGTERM and SIGINT drain the server and the usage queue before the process exits. A repeated
 * signal does not kill the process with queued usage: in-flight requests end at once (each booked),
 * and the drain goes on until the queue is written. SIGKILL loses nothing either: the rows are in
 * the usage journal, replayed at the next start.
 */
export function stopOnSignals(
  server: RunningServer,
  runtime: Runtime,
  signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'],
  options: SignalOptions = {},
): void {
  let received = 0;
  const arrivals = stopSignals();
  const endNow = (signal: string) => {
    runtime.logger.warn(
      { signal, signals: received, pendingUsage: runtime.usage.pending },
      'shutdown already under way: in-flight requests end now; queued usage is still written before exit',
    );
    runtime.drain.expire('signal');
  };
  const shutdown = (signal: string, repeatEndsNow: boolean) => {
    if (arrivals.next() === 'copy') return;
    received += 1;
    if (received > 1) {
      if (repeatEndsNow) endNow(signal);
      return;
    }
    runtime.logger.info({ signal, pendingUsage: runtime.usage.pending, drainTimeoutMs: runtime.config.drainTimeoutMs }, 'shutting down');
    // Holds the process until the drain has finished: once the server is closed, a wait on something
    // that keeps no handle open (the usage writer's answer) would otherwise let it end, unlogged.
    setInterval(() => undefined, 60_000);
    server
      .stop()
      .then(() => options.afterStop?.())
      .then(() => {
        runtime.logger.info({ usageWritten: runtime.usage.totalWritten }, 'stopped');
        exitAfterLogs(runtime, 0);
      })
      .catch((error: unknown) => {
        runtime.logger.error({ error: (error as Error).message }, 'shutdown failed');
        exitAfterLogs(runtime, 1);
      });
  };
  const repeatEndsNow = options.repeatEndsNow ?? true;
  for (const signal of signals) process.on(signal, () => shutdown(signal, repeatEndsNow));
  for (const signal of options.endNow ?? [])
    process.on(signal, () => {
      if (received === 0) shutdown(signal, false);
      else received += 1;
      endNow(signal);
    });
}

/** The log is written asynchronously: exiting before it is written out would drop the last lines ("stopped"). */
function exitAfterLogs(runtime: Runtime, code: number): void {
  void flushLogs(runtime.logger).then(() => process.exit(code));
}
