// A bench-only build of Keyway whose store drops usage rows instead of writing them (no rows, no
// roll-ups); run with KEYWAY_USAGE_JOURNAL=off so nothing is written for a request at all. With
// KEYWAY_BENCH_DROP=rollups it writes the rows and drops only the roll-ups.
// bench/usage-writes.ts compares it with the real gateway to show what writing usage costs.

import { createRuntime } from '../../core/runtime.ts';
import { startServer, stopOnSignals } from '../../core/server.ts';
import type { PluginDefinition, PluginSetupContext } from '../../core/spec/plugin.ts';
import type { Store, StoreDriver } from '../../core/spec/store.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';
import { releaseStartupMemory, sizeFetchCapacity } from '../../plugins/process-start.ts';

// The process as plugins/main.ts sets it up (the fetch connection limit, the start-up memory handed
// back): a bench build compared with the gateway must differ from it only in what it is built to leave out.
sizeFetchCapacity();

function withoutUsageWrites(store: Store): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      const dropped = process.env.KEYWAY_BENCH_DROP === 'rollups' ? ['setUsageFolds', 'setUsageRollups'] : ['insertUsage', 'insertJournaledUsage'];
      if (dropped.includes(property as string)) return () => Promise.resolve(undefined);
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const plugins = builtinPlugins().map((source) => {
  const definition = source.definition as PluginDefinition;
  if (definition.kind !== 'store') return source;
  const setup = definition.setup;
  if (setup === undefined) return source;
  const wrapped: PluginDefinition = {
    ...definition,
    async setup(context: PluginSetupContext<unknown>) {
      const contributions = (await setup(context)) ?? {};
      const driver = contributions.store as StoreDriver;
      return { ...contributions, store: { ...driver, open: async (url, options) => withoutUsageWrites(await driver.open(url, options)) } };
    },
  };
  return { ...source, definition: wrapped };
});

const runtime = await createRuntime({ builtinPlugins: plugins });
const server = startServer(runtime);
stopOnSignals(server, runtime);
releaseStartupMemory();
