// Health shared across instances: a key cooling down after a rate limit on one instance cools on all,
// a key its provider refused (or a re-check found working again) on one is out of (back in) rotation on
// all, and a provider's circuit opened (or closed after recovery) on one is opened (closed) on all, within
// a message's flight over the cluster bus. Best effort like the bus: a missed message costs the other
// instances one rate-limited call, one refused call, or a few failures of their own before they judge the
// same; a missed recovery is found by their own re-check of the key (every check_interval), and after a
// bus outage each goes back to the statuses stored in the database.

import type { Logger } from '../../logger.ts';
import { CLUSTER_TOPICS, type ClusterBus } from '../../spec/cluster.ts';
import type { HealthEvent, HealthMonitor } from './monitor.ts';

/** Resolves once the bus has the event delivered (never rejects: a failure is logged). */
export function publishHealth(cluster: ClusterBus, logger: Logger, event: HealthEvent): Promise<void> {
  return Promise.resolve()
    .then(() => cluster.publish(CLUSTER_TOPICS.health, JSON.stringify(event)))
    .catch((error: unknown) =>
      logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'could not tell the cluster about a health change'),
    );
}

/** Applies what the other instances publish; a message that is not a health event is ignored. */
export function listenForHealth(cluster: ClusterBus, monitor: HealthMonitor): () => void {
  const unsubscribe = cluster.subscribe(CLUSTER_TOPICS.health, (message) => {
    const event = parseHealthEvent(message);
    if (event !== undefined) monitor.apply(event);
  });
  const stopResuming = cluster.onResume?.(() => monitor.trustStoredKeyStatus());
  return () => {
    unsubscribe();
    stopResuming?.();
  };
}

export function parseHealthEvent(message: string): HealthEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const event = value as Record<string, unknown>;
  if (event.kind === 'cooldown' && typeof event.keyId === 'string' && typeof event.until === 'number') {
    return { kind: 'cooldown', keyId: event.keyId, until: event.until };
  }
  if (event.kind === 'key' && typeof event.keyId === 'string' && typeof event.rejected === 'boolean' && typeof event.at === 'number') {
    return { kind: 'key', keyId: event.keyId, rejected: event.rejected, at: event.at };
  }
  if (
    event.kind === 'circuit' &&
    typeof event.scope === 'string' &&
    (event.state === 'disabled' || event.state === 'healthy') &&
    typeof event.changedAt === 'number'
  ) {
    return {
      kind: 'circuit',
      scope: event.scope,
      state: event.state,
      changedAt: event.changedAt,
      reason: typeof event.reason === 'string' ? event.reason : undefined,
    };
  }
  return undefined;
}
