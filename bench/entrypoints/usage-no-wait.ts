// A bench-only build of Keyway whose answers do not wait for the usage journal's group write
// (UsageQueue.journaled answers undefined): the rows are still journaled at the end of each turn.
// bench/usage-writes.ts (ABLATIONS=1) compares it with the real gateway to show what the wait costs.

import { UsageQueue } from '../../core/accounting/usage-queue.ts';
import { createRuntime } from '../../core/runtime.ts';
import { startServer, stopOnSignals } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';
import { releaseStartupMemory, sizeFetchCapacity } from '../../plugins/process-start.ts';

// The process as plugins/main.ts sets it up (the fetch connection limit, the start-up memory handed
// back): a bench build compared with the gateway must differ from it only in what it is built to leave out.
sizeFetchCapacity();

UsageQueue.prototype.journaled = () => undefined;

const runtime = await createRuntime({ builtinPlugins: builtinPlugins() });
const server = startServer(runtime);
stopOnSignals(server, runtime);
releaseStartupMemory();
