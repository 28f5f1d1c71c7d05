// A bench-only build of Keyway without the built-in plugins named in KEYWAY_BENCH_WITHOUT (comma-
// separated plugin names): bench/plugin-cost.ts compares it with the full gateway to show what a
// plugin costs the request path.

import { createRuntime } from '../../core/runtime.ts';
import { startServer, stopOnSignals } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';
import { releaseStartupMemory, sizeFetchCapacity } from '../../plugins/process-start.ts';

// The process as plugins/main.ts sets it up (the fetch connection limit, the start-up memory handed
// back): a bench build compared with the gateway must differ from it only in what it is built to leave out.
sizeFetchCapacity();

const without = new Set(
  (process.env.KEYWAY_BENCH_WITHOUT ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== ''),
);
const runtime = await createRuntime({ builtinPlugins: builtinPlugins().filter((source) => !without.has(source.definition.name)) });
const server = startServer(runtime);
stopOnSignals(server, runtime);
releaseStartupMemory();
