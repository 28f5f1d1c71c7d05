// Reports read what was answered before them. Usage rows are queued and written in batches
// (KEYWAY_USAGE_FLUSH_MS), so a report asked for right after a request (the seed's script does exactly
// that) found it missing: this worker's queue is written first, and every other worker of this instance
// (KEYWAY_WORKERS) is asked to write its own, within the primary's bounded wait (a worker that does not
// answer in time is read as it stands). Other instances sharing the store are not asked: they write
// within their flush interval (docs/analytics.md, "Freshness"). Reports are not on the request path.

import type { Services } from '../../core/spec/services.ts';

export const USAGE_FLUSH_TOPIC = 'analytics:flush-usage';

/** Lets the other workers' reports ask this one to write its queued usage rows. */
export function answerUsageFlushes(services: Services): void {
  services.siblings?.respond(USAGE_FLUSH_TOPIC, async () => {
    await services.usageQueue.flush();
    return 'written';
  });
}

/** Writes this worker's queued usage rows and asks every other worker to write theirs. */
export async function withFreshUsage(services: Services): Promise<void> {
  // A store that cannot take the batch now keeps it queued: the report reads what is written.
  await Promise.all([services.usageQueue.flush().catch(() => undefined), services.siblings?.ask(USAGE_FLUSH_TOPIC).catch(() => undefined)]);
}
