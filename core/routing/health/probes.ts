import type { Clock } from '../../clock.ts';
import type { ConfigSnapshots } from '../../credentials/snapshot.ts';
import { DEFAULT_HEALTH_POLICY, HealthMonitor, type HealthPolicy } from './monitor.ts';
import type { Logger } from '../../logger.ts';
import type { ReportedModels } from '../reported-models.ts';
import type { ProviderKeyRecord } from '../../spec/plugin.ts';
import type { Store } from '../../spec/store.ts';
import type { ClusterBus } from '../../spec/cluster.ts';
import { listenForHealth, publishHealth } from './shared.ts';

/** The account's health-check policy (`POST /v1/providers/health-check`), or the defaults. */
export function healthPolicyOf(store: ConfigSnapshots, accountId: string | null): HealthPolicy {
  if (accountId === null) return (store.current.platformSettings.health_check as HealthPolicy | undefined) ?? DEFAULT_HEALTH_POLICY;
  return (store.current.accounts.get(accountId)?.settings.health_check as HealthPolicy | undefined) ?? DEFAULT_HEALTH_POLICY;
}

export function hasHealthPolicy(store: ConfigSnapshots, accountId: string | null): boolean {
  if (accountId === null) return store.current.platformSettings.health_check !== undefined;
  return store.current.accounts.get(accountId)?.settings.health_check !== undefined;
}

export function createHealthMonitor(
  store: ConfigSnapshots,
  repository: Store,
  logger: Logger,
  clock: Clock,
  cluster?: ClusterBus,
  unusableHere?: (key: ProviderKeyRecord) => string | undefined,
): HealthMonitor {
  const monitor = new HealthMonitor({
    clock,
    unusableHere,
    onShare: cluster === undefined ? undefined : (event) => publishHealth(cluster, logger, event),
    policyFor: (accountId) => healthPolicyOf(store, accountId),
    onKeyRejected(key) {
      logger.warn({ keyId: key.id, provider: key.provider }, 'provider key rejected by its provider; taken out of rotation');
      // Persisted off the request path: the in-memory flag already keeps the key out of rotation.
      repository
        .updateProviderKeyStatus(key.id, 'invalid')
        .then(() => store.refresh())
        .catch((error: unknown) => logger.error({ keyId: key.id, error: (error as Error).message }, 'could not persist key status'));
    },
    onKeyRestored(key) {
      logger.info({ keyId: key.id, provider: key.provider }, 'provider key accepted again; back in rotation');
      repository
        .updateProviderKeyStatus(key.id, 'active')
        .then(() => store.refresh())
        .catch((error: unknown) => logger.error({ keyId: key.id, error: (error as Error).message }, 'could not persist key status'));
    },
  });
  if (cluster !== undefined) listenForHealth(cluster, monitor);
  return monitor;
}

function allKeys(store: ConfigSnapshots): ProviderKeyRecord[] {
  const keys: ProviderKeyRecord[] = [];
  for (const byProvider of store.current.accountKeys.values()) for (const list of byProvider.values()) keys.push(...list);
  for (const list of store.current.platformKeys.values()) keys.push(...list);
  return keys;
}

/**
 * Active probes: every `check_interval`, each key of an account that set a health-check policy is
 * checked against its provider's models endpoint, which costs no tokens. A key its provider refused
 * is re-checked so on every account, policy or not (the default check_interval, 60 s): a key fixed at
 * the provider, or refused by a passing fault, comes back without anyone reading GET /v1/providers
 * (QA14 migrator 8). One tick a second.
 */
export function startProbes(store: ConfigSnapshots, models: ReportedModels, health: HealthMonitor, intervalMs = 1000): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await probeDueKeys(store, models, health);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
}

export async function probeDueKeys(store: ConfigSnapshots, models: ReportedModels, health: HealthMonitor): Promise<number> {
  const due = allKeys(store).filter(
    (key) => key.status !== 'deleted' && (hasHealthPolicy(store, key.accountId) || health.isRejected(key)) && health.probeDue(key),
  );
  await Promise.all(
    due.map(async (key) => {
      const listing = await models.refresh(key, true, 10_000);
      health.recordProbe(
        key,
        listing.status === 'active',
        listing.status === 'invalid' ? 'auth_error' : listing.status === 'active' ? undefined : 'server_error',
      );
    }),
  );
  return due.length;
}
