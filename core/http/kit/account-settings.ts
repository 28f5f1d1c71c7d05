import { KeywayError } from '../../errors.ts';
import type { Runtime } from '../../runtime.ts';
import type { Principal } from '../../spec/principal.ts';

/** Sets (or, with null, removes) one key of the caller's account settings, then refreshes the snapshot. */
export async function updateAccountSettings(runtime: Runtime, principal: Principal, key: string, value: unknown): Promise<Record<string, unknown>> {
  const account = runtime.snapshots.current.accounts.get(principal.accountId);
  if (account === undefined) throw new KeywayError('not_found', { detail: `Account ${principal.accountId} does not exist.` });
  const settings = { ...account.settings };
  if (value === null) delete settings[key];
  else settings[key] = value;
  await runtime.store.updateAccountSettings(principal.accountId, settings);
  await runtime.snapshots.refresh();
  return settings;
}
