// A bench-only build of Keyway whose answers do not wait for the usage journal's group write
// (UsageQueue.journaled answers undefined): the rows are still journaled at the end of each turn.
// bench/usage-writes.ts (ABLATIONS=1) compares it with the real gateway to show what the wait costs.

import { UsageQueue } from '../../core/accounting/usage-queue.ts';
import { createRuntime } from '../../core/runtime.ts';
import { startServer, stopOnSignals } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';

UsageQueue.prototype.journaled = () => undefined;

const runtime = await createRuntime({ builtinPlugins: builtinPlugins() });
const server = startServer(runtime);
stopOnSignals(server, runtime);
