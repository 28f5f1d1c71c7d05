// The composition root: the one place that wires core, built-in plugins and extra routes together.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../core/config.ts';
import { redactSecrets } from '../core/credentials/secret-shapes.ts';
import { SettingError } from '../core/spec/settings.ts';
import { cpuQuotaCores, END_NOW_SIGNAL, planWorkers, selfCommand, workerIndex } from '../core/process/workers.ts';
import { releaseStartupMemory, sizeFetchCapacity } from './process-start.ts';

/** Problems an operator can fix get one clear line, not a stack trace. */
async function operatorErrorTypes(): Promise<ReadonlyArray<abstract new (...args: never[]) => Error>> {
  const [{ PluginLoadError }, { StorageError }] = await Promise.all([import('../core/registry.ts'), import('./store-sqlite/index.ts')]);
  return [SettingError, PluginLoadError, StorageError];
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cores Keyway may use: those it may run on, capped by a container's CPU quota (cgroup v2, then v1). */
function usableCores(): number {
  const quota =
    cpuQuotaCores(readText('/sys/fs/cgroup/cpu.max')) ??
    cpuQuotaCores(`${readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') ?? ''} ${readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us') ?? ''}`);
  return Math.min(availableParallelism(), quota ?? Number.POSITIVE_INFINITY);
}

/**
 * One process serves, or (KEYWAY_WORKERS, core/process/workers.ts) a primary process starts several
 * workers on one port and holds what they share (core/process/primary.ts); each worker is this
 * program again, told its number in its environment.
 */
async function main(): Promise<void> {
  // `keyway copy-store …` (argv[2] in a source run and in the binary alike) is a command, not a start.
  if (process.argv[2] === 'copy-store') return runCopyStore(process.argv.slice(3));
  sizeFetchCapacity();
  const index = workerIndex(process.env);
  if (index !== undefined) return serveAsWorker(index);
  const config = loadConfig(process.env);
  // config.env: the environment with the KEYWAY_CONFIG file's variables under it (KEYWAY_WORKERS may be set there).
  const plan = planWorkers({ env: config.env, platform: process.platform, cores: usableCores(), databaseUrl: config.databaseUrl });
  // One instance per embedded database: this process (alone, or the workers' primary) holds its lock until it exits.
  (await import('./store-sqlite/instance-lock.ts')).lockEmbeddedDatabase(config.databaseUrl);
  const { createLogger } = await import('../core/logger.ts');
  // On a libSQL server or PostgreSQL without shared counters, the lease row in the database does the same (plugins/instance-lease.ts).
  const lease = await (await import('./instance-lease.ts')).holdDatabaseInstanceLease(config, createLogger(config.logLevel).child({ process: 'lease' }));
  try {
    if (plan.workers === 1) return await serveAlone(plan.note, lease);
    const { runPrimary } = await import('../core/process/primary.ts');
    releaseStartupMemory();
    const code = await runPrimary({
      workers: plan.workers,
      command: selfCommand(process.argv, process.execArgv, process.execPath),
      env: process.env,
      host: config.host,
      port: config.port,
      workerTimeoutMs: config.workerTimeoutMs,
      workerStartTimeoutMs: config.workerStartTimeoutMs,
      logger: createLogger(config.logLevel).child({ process: 'primary' }),
    });
    await lease?.release();
    process.exit(code);
  } catch (error) {
    // A start refused after the lease was taken gives it back: the next start need not wait it out.
    await lease?.release();
    throw error;
  }
}

/** Moves an embedded SQLite installation into PostgreSQL (plugins/copy-store.ts), then exits with its code. */
async function runCopyStore(args: string[]): Promise<void> {
  const { copyStore } = await import('./copy-store.ts');
  const code = await copyStore(
    args,
    process.env,
    (line) => void process.stdout.write(`${line}\n`),
    (line) => void process.stderr.write(`${line}\n`),
  );
  process.exit(code);
}

async function serveAlone(note: string | undefined, lease: { release(): Promise<void> } | undefined): Promise<void> {
  const [{ createRuntime }, { startServer, stopOnSignals }, { builtinPlugins }] = await Promise.all([
    import('../core/runtime.ts'),
    import('../core/server.ts'),
    import('./builtin.ts'),
  ]);
  const runtime = await createRuntime({ builtinPlugins: builtinPlugins() });
  const server = startServer(runtime);
  stopOnSignals(server, runtime, undefined, lease === undefined ? {} : { afterStop: lease.release });
  releaseStartupMemory();
  runtime.logger.info({ url: server.url, database: runtime.store.driver, workers: 1, ...(note ? { note } : {}) }, `Keyway listening on ${server.url}`);
}

/**
 * A worker: counters and the cluster bus are the primary's over IPC, unless Redis is configured (then
 * Redis holds them for every instance and worker alike). SIGINT from a terminal reaches the whole
 * process group: the worker leaves it to the primary, which asks each worker to drain once.
 */
async function serveAsWorker(index: number): Promise<void> {
  const [{ createRuntime }, { startServer, stopOnSignals }, { builtinPlugins }, ipc] = await Promise.all([
    import('../core/runtime.ts'),
    import('../core/server.ts'),
    import('./builtin.ts'),
    import('../core/cluster/ipc-client.ts'),
  ]);
  const channel = ipc.parentChannel();
  // The primary gone while this worker still starts (killed): nobody would hear it listen, time its
  // start, restart or stop it, so the start ends here rather than leave an orphan that could finish
  // later and take connections on the port for an instance that is gone.
  let listening = false;
  channel.onClose(() => {
    if (!listening) process.exit(1);
  });
  const host = new ipc.HostClient(channel);
  const shared = loadConfig(process.env).redisUrl === undefined;
  const runtime = await createRuntime({
    builtinPlugins: builtinPlugins(),
    // With Redis too: each instance stays one scrape target that answers for all its workers.
    siblings: ipc.workerSiblings(host, index),
    ...(shared ? { counters: new ipc.IpcCounters(host), cluster: ipc.ipcClusterBus(host, `worker-${index}-${process.pid}`) } : {}),
  });
  const server = startServer(runtime, { worker: index });
  // A signal sent to the process group reaches this worker twice (directly, then from the primary):
  // a repeated SIGTERM is the same stop, and only the primary's END_NOW_SIGNAL ends requests at once.
  stopOnSignals(server, runtime, ['SIGTERM'], { repeatEndsNow: false, endNow: [END_NOW_SIGNAL] });
  process.on('SIGINT', () => undefined);
  // The primary is gone (killed): nobody restarts or coordinates this worker any more, so it drains and exits.
  listening = true;
  channel.onClose(() => process.kill(process.pid, 'SIGTERM'));
  runtime.logger.info({ worker: index, pid: process.pid, port: server.port, database: runtime.store.driver }, `worker ${index} listening`);
  channel.send({ listening: server.port });
  releaseStartupMemory();
}

/**
 * The one line a refused start prints. A problem the operator can fix is its message alone; anything
 * else is its name and message (an unexpected error), with the stack trace only at KEYWAY_LOG_LEVEL=debug
 * or trace: the promise is one line naming what is wrong, and a stack is noise to an operator.
 */
function refusalLine(error: unknown, known: boolean): string {
  if (!(error instanceof Error)) return String(error).replace(/\s+/g, ' ');
  if (known) return error.message.replace(/\s*\n\s*/g, ' ');
  const stack = /^(debug|trace)$/i.test(process.env.KEYWAY_LOG_LEVEL?.trim() ?? '') && error.stack !== undefined;
  if (stack) return error.stack ?? '';
  return `${error.name}: ${error.message.replace(/\s*\n\s*/g, ' ')} (KEYWAY_LOG_LEVEL=debug prints where it came from)`;
}

main().catch(async (error: unknown) => {
  // A worker that could not start printed why; the primary exits with its code without repeating it.
  if (error instanceof Error && error.name === 'WorkerStartError') process.exit((error as Error & { exitCode: number }).exitCode);
  const types = await operatorErrorTypes().catch(() => [SettingError]);
  const known = types.some((type) => error instanceof type) || (error instanceof Error && /master key|KEYWAY_/.test(error.message));
  // A plugin's setup or module can fail with a vendor's answer that echoes a token: the line is scrubbed
  // of key-shaped text as every log line is (QA18 found a setup error's key printed in clear).
  process.stderr.write(`keyway: cannot start: ${redactSecrets(refusalLine(error, known))}\n`);
  process.exit(1);
});
