// GET /v1/providers/health under KEYWAY_WORKERS: each worker's windows hold only the calls it made, so
// the worker answering asks the others (through the primary, at most its 2 s timeout) for their figures
// of the asking account and combines them (figures.ts). The shared parts (circuit, cooldowns, refused
// keys) are the same on every worker already. Never on the request path.

import type { ConfigSnapshots } from '../../credentials/snapshot.ts';
import type { WorkerSiblings } from '../../spec/cluster.ts';
import { type AccountFigures, parseAccountFigures } from './figures.ts';
import type { HealthMonitor } from './monitor.ts';

/** The question's topic; its detail is the account id. */
export const HEALTH_FIGURES_TOPIC = 'health:figures';

function accountFigures(health: HealthMonitor, snapshots: ConfigSnapshots, accountId: string): AccountFigures {
  const byProvider = snapshots.current.accountKeys.get(accountId) ?? new Map();
  return Object.fromEntries([...byProvider.entries()].map(([provider, keys]) => [provider, health.figures(keys)]));
}

/** Lets the other workers read this one's windows for an account. */
export function answerHealthFigures(siblings: WorkerSiblings | undefined, health: HealthMonitor, snapshots: ConfigSnapshots): void {
  siblings?.respond(HEALTH_FIGURES_TOPIC, (accountId) => JSON.stringify(accountFigures(health, snapshots, accountId)));
}

export interface GatheredHealth {
  /** Every other worker's figures that came back in time. */
  figures: AccountFigures[];
  /** Whose figures the answer holds, and the workers left out (no answer within the timeout, or none that could be read); undefined with one process. */
  workers: { counted: number[]; left_out: number[] } | undefined;
}

export async function gatherHealthFigures(siblings: WorkerSiblings | undefined, accountId: string): Promise<GatheredHealth> {
  if (siblings === undefined) return { figures: [], workers: undefined };
  // The primary gone (this worker is about to drain): its own figures are all there is to say.
  const gathered = await siblings.ask(HEALTH_FIGURES_TOPIC, accountId).catch(() => ({ answers: [], unanswered: [] }));
  const figures: AccountFigures[] = [];
  const counted = [siblings.worker];
  const leftOut = [...gathered.unanswered];
  for (const { worker, text } of gathered.answers) {
    const parsed = parseAccountFigures(text);
    if (parsed === undefined) {
      leftOut.push(worker);
      continue;
    }
    figures.push(parsed);
    counted.push(worker);
  }
  const ascending = (first: number, second: number) => first - second;
  return { figures, workers: { counted: counted.sort(ascending), left_out: leftOut.sort(ascending) } };
}
