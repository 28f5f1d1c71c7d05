// The composition root: the one place that wires core, built-in plugins and extra routes together.

import { ConfigError } from '../core/config.ts';
import { PluginLoadError } from '../core/registry.ts';
import { createRuntime } from '../core/runtime.ts';
import { startServer, stopOnSignals } from '../core/server.ts';
import { builtinPlugins } from './builtin.ts';
import { StorageError } from './store-sqlite/index.ts';

/** Problems an operator can fix get one clear line, not a stack trace. */
const OPERATOR_ERRORS = [ConfigError, PluginLoadError, StorageError];

async function main(): Promise<void> {
  const runtime = await createRuntime({ builtinPlugins: builtinPlugins() });
  const server = startServer(runtime);
  stopOnSignals(server, runtime);
  runtime.logger.info({ url: server.url, database: runtime.store.driver }, `Keyway listening on ${server.url}`);
}

main().catch((error: unknown) => {
  const known = OPERATOR_ERRORS.some((type) => error instanceof type) || (error instanceof Error && /master key|KEYWAY_/.test(error.message));
  process.stderr.write(`keyway: cannot start: ${error instanceof Error ? (known ? error.message : (error.stack ?? error.message)) : String(error)}\n`);
  process.exit(1);
});
