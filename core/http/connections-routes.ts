// The operator's view of upstream connections: in-flight attempts per account and per upstream, the
// queue for fair shares, and how long attempts waited in it (core/lifecycle/upstream-slots.ts).

import { guarded } from './kit/guard.ts';
import { json } from './kit/respond.ts';

export const connectionsRoutes = {
  get: guarded('operator', (runtime) => json(runtime.slots.report())),
};
