// The composition root: the one place that wires core, built-in plugins and extra routes together.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/config.ts';
import { BUN_DEFAULT_FETCH_LIMIT, fetchCapacityReexec, parseOpenFilesLimit } from '../core/process/fetch-capacity.ts';

/** Problems an operator can fix get one clear line, not a stack trace. */
async function operatorErrorTypes(): Promise<ReadonlyArray<abstract new (...args: never[]) => Error>> {
  const [{ PluginLoadError }, { StorageError }] = await Promise.all([import('../core/registry.ts'), import('./store-sqlite/index.ts')]);
  return [ConfigError, PluginLoadError, StorageError];
}

function openFilesLimit(): number | undefined {
  try {
    return parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Runs first, before the gateway's modules load (they are imported below, once this has run): Bun
 * reads its fetch connection limit only when a process starts, so the process re-executes itself
 * once with BUN_CONFIG_MAX_HTTP_REQUESTS set (core/process/fetch-capacity.ts). execve keeps the
 * process id, its standard streams and its arguments.
 */
function sizeFetchCapacity(): void {
  const reexec = fetchCapacityReexec({
    env: process.env,
    argv: process.argv,
    execArgv: process.execArgv,
    execPath: process.execPath,
    openFilesLimit: openFilesLimit(),
  });
  if (reexec === undefined) return;
  const fallback = `Bun's default of ${BUN_DEFAULT_FETCH_LIMIT} upstream connections applies`;
  if (typeof process.execve !== 'function') {
    process.stderr.write(`keyway: process.execve is not available on this platform; ${fallback}\n`);
    return;
  }
  try {
    process.execve(reexec.file, reexec.args, reexec.env);
  } catch (error) {
    process.stderr.write(
      `keyway: could not re-execute with ${reexec.connections} upstream connections (${error instanceof Error ? error.message : String(error)}); ${fallback}\n`,
    );
  }
}

async function main(): Promise<void> {
  sizeFetchCapacity();
  const [{ createRuntime }, { startServer, stopOnSignals }, { builtinPlugins }] = await Promise.all([
    import('../core/runtime.ts'),
    import('../core/server.ts'),
    import('./builtin.ts'),
  ]);
  const runtime = await createRuntime({ builtinPlugins: builtinPlugins() });
  const server = startServer(runtime);
  stopOnSignals(server, runtime);
  runtime.logger.info({ url: server.url, database: runtime.store.driver }, `Keyway listening on ${server.url}`);
}

main().catch(async (error: unknown) => {
  const types = await operatorErrorTypes().catch(() => [ConfigError]);
  const known = types.some((type) => error instanceof type) || (error instanceof Error && /master key|KEYWAY_/.test(error.message));
  process.stderr.write(`keyway: cannot start: ${error instanceof Error ? (known ? error.message : (error.stack ?? error.message)) : String(error)}\n`);
  process.exit(1);
});
