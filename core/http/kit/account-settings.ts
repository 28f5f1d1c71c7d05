import { KeywayError } from '../../errors.ts';
import type { Runtime } from '../../runtime.ts';
import type { Principal } from '../../spec/principal.ts';
import { recordChange } from './audit-trail.ts';

/**
 * Sets (or, with null, removes) one key of the caller's account settings, then refreshes the snapshot.
 * Given the request, the change is recorded for the audit log: the setting before and after.
 */
export async function updateAccountSettings(
  runtime: Runtime,
  principal: Principal,
  key: string,
  value: unknown,
  request?: Request,
): Promise<Record<string, unknown>> {
  const account = runtime.snapshots.current.accounts.get(principal.accountId);
  if (account === undefined) throw new KeywayError('not_found', { detail: `Account ${principal.accountId} does not exist.` });
  if (request !== undefined) recordChange(request, { before: { [key]: account.settings[key] ?? null }, after: { [key]: value } });
  const settings = { ...account.settings };
  if (value === null) delete settings[key];
  else settings[key] = value;
  await runtime.store.updateAccountSettings(principal.accountId, settings);
  await runtime.snapshots.refresh();
  return settings;
}
