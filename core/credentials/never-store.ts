// Whether an account is in never-store mode (its compliance block says `data_residency:
// never_store_keys`): read from the snapshot by every path that would store key material.

import type { ConfigSnapshots } from './snapshot.ts';

const COMPLIANCE_SETTING = 'compliance';
const NEVER_STORE_KEYS = 'never_store_keys';

/** True when the account's compliance settings forbid storing provider key material, even encrypted. */
export function neverStoresKeysIn(snapshots: Pick<ConfigSnapshots, 'current'>, accountId: string | null): boolean {
  if (accountId === null) return false;
  const block = snapshots.current.accounts.get(accountId)?.settings[COMPLIANCE_SETTING];
  return block !== null && typeof block === 'object' && (block as Record<string, unknown>).data_residency === NEVER_STORE_KEYS;
}
