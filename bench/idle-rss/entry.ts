// The gateway as `npm start` runs it alone (plugins/main.ts, one process), for the ablations of
// bench/idle-rss.ts: the built-in plugins whose module bench/idle-rss/ablate.ts replaced by a stub
// (their definition is undefined) are left out, and so is any plugin named in KEYWAY_BENCH_WITHOUT
// (its module still loads; its setup does not run). A bench tool only.

import { createRuntime } from '../../core/runtime.ts';
import { startServer, stopOnSignals } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';

const without = new Set(
  (process.env.KEYWAY_BENCH_WITHOUT ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== ''),
);
const plugins = builtinPlugins().filter((source) => source.definition !== undefined && !without.has(source.definition.name));
const runtime = await createRuntime({ builtinPlugins: plugins });
const server = startServer(runtime);
stopOnSignals(server, runtime);
