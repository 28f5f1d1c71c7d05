// The first start of an installation: the `default` account with its admin key, and an operator key
// unless one is configured, each printed once to the terminal and stored only as a hash.

import type { GatewayConfig } from './config.ts';
import { generateGatewayKey, hashGatewayKey, maskKey, randomId } from './credentials/secrets.ts';
import { DEFAULT_ACCOUNT_ID } from './credentials/snapshot.ts';
import type { Logger } from './logger.ts';
import type { Store } from './spec/plugin.ts';

export interface FirstStartSecrets {
  operatorKey?: string;
  defaultAdminKey?: string;
}

/**
 * First start: the `default` account, its admin key, and an operator key unless one is configured.
 * Once KEYWAY_ADMIN_KEY is set, a generated operator key is retired (docs/configuration.md).
 */
export async function bootstrap(store: Store, config: GatewayConfig, logger: Logger): Promise<FirstStartSecrets> {
  const secrets: FirstStartSecrets = {};
  if ((await store.getAccount(DEFAULT_ACCOUNT_ID)) === undefined && (await createdHere(store))) {
    const key = generateGatewayKey('ak');
    await store.insertGatewayKey({
      id: 'key_default_admin',
      accountId: DEFAULT_ACCOUNT_ID,
      role: 'admin',
      name: 'default admin',
      keyHash: hashGatewayKey(key),
      maskedKey: maskKey(key),
    });
    secrets.defaultAdminKey = key;
  }
  if (config.adminKey !== undefined) await retireGeneratedOperatorKeys(store, logger);
  else if ((await store.countGatewayKeys('operator')) === 0) {
    const key = generateGatewayKey('op');
    await store.insertGatewayKey({
      // A fresh id each time: a revoked generated key keeps its row (and id) for the audit trail.
      id: randomId('key_operator'),
      accountId: DEFAULT_ACCOUNT_ID,
      role: 'operator',
      name: 'operator (generated at first start)',
      keyHash: hashGatewayKey(key),
      maskedKey: maskKey(key),
    });
    secrets.operatorKey = key;
  }
  // Other instances sharing the database may have loaded their configuration before these keys existed:
  // a recorded change makes them reload within KEYWAY_CONFIG_POLL_MS.
  if (secrets.defaultAdminKey !== undefined || secrets.operatorKey !== undefined) await store.recordConfigChange?.();
  return secrets;
}

/**
 * Creates the `default` account, or answers false when another instance sharing the database created it
 * meanwhile: two replicas of a first rollout both find none, and the one whose insert loses is a later
 * start, not a failed one (QA20 ops: it stopped on the database's duplicate-key error).
 */
async function createdHere(store: Store): Promise<boolean> {
  try {
    await store.insertAccount(DEFAULT_ACCOUNT_ID, 'default');
    return true;
  } catch (error) {
    if ((await store.getAccount(DEFAULT_ACCOUNT_ID)) !== undefined) return false;
    throw error;
  }
}

/**
 * An operator who sets KEYWAY_ADMIN_KEY wants that key to be the operator key: often because the
 * printed one leaked, or so that every instance shares one. The key generated at first start (stored
 * as a hash) would otherwise stay valid beside it, unseen. It is revoked, and the start says so; unset
 * KEYWAY_ADMIN_KEY again and the next start generates and prints a new one.
 */
async function retireGeneratedOperatorKeys(store: Store, logger: Logger): Promise<void> {
  if ((await store.countGatewayKeys('operator')) === 0) return;
  const stored = (await store.listActiveGatewayKeys()).filter((row) => row.role === 'operator');
  const retired: string[] = [];
  for (const row of stored) if (await store.revokeGatewayKey(row.id, row.accountId)) retired.push(row.id);
  if (retired.length === 0) return;
  logger.warn(
    { retired },
    'KEYWAY_ADMIN_KEY is set: the operator key generated at first start is revoked, and only KEYWAY_ADMIN_KEY is the operator key from now on',
  );
}

/**
 * Secrets go to the terminal once, never through the logger (which would redact them anyway), once the
 * server listens. `startFailed`: the server could not listen (its port taken): the keys exist all the
 * same and no later start shows them, so they are shown, saying the start failed (QA19 ops L7: the
 * banner came before the port was tried, and read as a start that had worked).
 */
export function announceSecrets(secrets: FirstStartSecrets, announce: (text: string) => void, startFailed = false): void {
  const lines: string[] = [];
  if (secrets.operatorKey) lines.push(`  Operator key (KEYWAY_ADMIN_KEY):      ${secrets.operatorKey}`);
  if (secrets.defaultAdminKey) lines.push(`  Admin key of the 'default' account:   ${secrets.defaultAdminKey}`);
  if (lines.length === 0) return;
  announce(
    [
      '',
      '================ Keyway first start ================',
      ...lines,
      ...(startFailed
        ? ['  Keyway did not start (the reason follows), but these keys were created and', '  stay valid: store them safely now, they are not shown again.']
        : ['  These keys are shown only now: store them safely.']),
      '====================================================',
      '',
    ].join('\n') + '\n',
  );
}
