// The account's maximum provider key age (an account setting): written by
// PUT /v1/providers/keys/rotation-policy, and by POST /v1/providers/keys when its seed `encryption`
// block asks for `key_rotation` every `rotation_days` (the core reaches it as this plugin's
// `keyAgePolicy` contribution). Read by ScheduleRunner.checkKeyAges.

import type { KeyAgePolicy } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { KEY_POLICY_SETTING, type KeyPolicy } from './schedules.ts';

export const KEY_POLICY_ROUTE = 'PUT /v1/providers/keys/rotation-policy';

/**
 * Stores the account's policy, `policy` or what it makes of the stored one (a policy without a
 * maximum age removes the setting: nothing is checked), and refreshes the snapshot; answers the
 * policy it replaced.
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
  if (policy.max_key_age_days === undefined) delete settings[KEY_POLICY_SETTING];
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
