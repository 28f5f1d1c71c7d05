// A bench-only build of Keyway with one more plugin whose call hook spins for KEYWAY_BENCH_BUSY_US
// microseconds on the request thread: bench/ablation/work-price.ts uses it to price one microsecond of
// request-thread work in throughput at c=64, the unit a policy's cost is paid in.

import { createRuntime } from '../../core/runtime.ts';
import { startServer, stopOnSignals } from '../../core/server.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';
import { releaseStartupMemory, sizeFetchCapacity } from '../../plugins/process-start.ts';

// The process as plugins/main.ts sets it up (the fetch connection limit, the start-up memory handed
// back): a bench build compared with the gateway must differ from it only in what it is built to leave out.
sizeFetchCapacity();

const busyMilliseconds = Number(process.env.KEYWAY_BENCH_BUSY_US ?? 0) / 1000;
const busyWork = definePlugin({
  name: 'bench-busy-work',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  description: 'Spins on the request thread in the call stage (bench only)',
  setup() {
    return {
      hooks: {
        call() {
          const until = performance.now() + busyMilliseconds;
          while (performance.now() < until) {
            // Spinning is the point: CPU on the request thread, nothing else.
          }
        },
      },
    };
  },
});
const runtime = await createRuntime({ builtinPlugins: [...builtinPlugins(), { definition: busyWork, source: 'builtin' }] });
const server = startServer(runtime);
stopOnSignals(server, runtime);
releaseStartupMemory();
