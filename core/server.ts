import { createApp } from './http/app.ts';
import type { Runtime } from './runtime.ts';

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting requests, lets in-flight ones finish, flushes usage, closes storage. */
  stop(): Promise<void>;
}

export function startServer(runtime: Runtime): RunningServer {
  const app = createApp(runtime);
  app.listen({
    hostname: runtime.config.host,
    port: runtime.config.port,
    // Keyway enforces its own limit with a spec-shaped 413; Bun's is only a backstop.
    maxRequestBodySize: runtime.config.maxBodyBytes * 2 + 1024 * 1024,
    idleTimeout: 255,
  });
  const server = app.server;
  if (server === null) throw new Error('the HTTP server did not start');
  const port = server.port as number;
  runtime.startBackground();
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${runtime.config.host.includes(':') ? `[${runtime.config.host}]` : runtime.config.host}:${port}`,
    port,
    stop: () => {
      stopping ??= (async () => {
        runtime.stopBackground();
        await server.stop(false);
        await runtime.usage.close();
        await runtime.counters.close?.();
        runtime.store.close();
      })();
      return stopping;
    },
  };
}

/** SIGTERM and SIGINT drain the server and the usage queue before the process exits. */
export function stopOnSignals(server: RunningServer, runtime: Runtime): void {
  const shutdown = (signal: string) => {
    runtime.logger.info({ signal, pendingUsage: runtime.usage.pending }, 'shutting down');
    server
      .stop()
      .then(() => {
        runtime.logger.info({ usageWritten: runtime.usage.totalWritten }, 'stopped');
        runtime.logger.flush();
        process.exit(0);
      })
      .catch((error: unknown) => {
        runtime.logger.error({ error: (error as Error).message }, 'shutdown failed');
        runtime.logger.flush();
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
