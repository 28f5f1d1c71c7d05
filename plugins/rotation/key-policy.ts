// The account's maximum provider key age (an account setting): written by
// PUT /v1/providers/keys/rotation-policy, and by POST /v1/providers/keys when its seed `encryption`
// block asks for `key_rotation` every `rotation_days` (the core reaches it as this plugin's
// `keyAgePolicy` contribution). Read by ScheduleRunner.checkKeyAges.

import type { KeyAgePolicy } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { KEY_POLICY_SETTING, type KeyPolicy } from './schedules.ts';

export const KEY_POLICY_ROUTE = 'PUT /v1/providers/keys/rotation-policy';

/**
 * Stores the account's policy, `policy` or what it makes of the stored one (without a maximum age
 * nothing is checked; a policy without an age or an address removes the setting), and refreshes the
 * snapshot; answers the policy it replaced.
 */
export async function writeKeyPolicy(
  services: Services,
  accountId: string,
  next: KeyPolicy | ((before: KeyPolicy | null) => KeyPolicy),
): Promise<KeyPolicy | null> {
  const account = await services.store.getAccount(accountId);
  if (account === undefined) throw services.errors.create('not_found', { detail: `Account ${accountId} does not exist.` });
  const before = (account.settings[KEY_POLICY_SETTING] as KeyPolicy | undefined) ?? null;
  const policy = typeof next === 'function' ? next(before) : next;
  const settings = { ...account.settings };
  // A policy with only a notification address is kept (the seed's block may set the age later); one
  // with neither is removed (QA15 re-verification: the address was answered and then dropped).
  if (policy.max_key_age_days === undefined && policy.notification_email === undefined) delete settings[KEY_POLICY_SETTING];
  else settings[KEY_POLICY_SETTING] = policy;
  await services.store.updateAccountSettings(accountId, settings);
  await services.snapshot.refresh();
  return before;
}

/** The seed's `rotation_days` as the maximum age; the notification address already set stays. */
export function keyAgePolicy(services: Services): KeyAgePolicy {
  return {
    route: KEY_POLICY_ROUTE,
    async setMaxKeyAgeDays(accountId, days) {
      await writeKeyPolicy(services, accountId, (before) => ({ ...before, max_key_age_days: days }));
    },
  };
}
