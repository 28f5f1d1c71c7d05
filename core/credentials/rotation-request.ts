// The seed's `encryption: {key_rotation, rotation_days}` on POST /v1/providers/keys. Keys are always
// sealed with AES-256-GCM, so `method` asks for nothing; `rotation_days` asks that keys be rotated
// that often. The plugin that keeps the account's maximum key age (the rotation plugin's
// `rotation-policy`: a key older than it raises `rotation_due`) applies it, so the block does what it
// says instead of being only echoed (QA15 F4); what was done, or why nothing was, is in `warnings`.

import type { KeyAgePolicy } from '../spec/plugin.ts';
import type { KeyOwner } from '../spec/provider.ts';

export interface RotationRequest {
  key_rotation?: boolean;
  rotation_days?: number;
}

export interface RotationOutcome {
  /** The maximum key age now in force because of this request, for the answer's `encryption`. */
  maxKeyAgeDays: number | undefined;
  /** One line each: what the block did, or why it did nothing. */
  warnings: string[];
}

const NOTHING: RotationOutcome = { maxKeyAgeDays: undefined, warnings: [] };

/**
 * Applies `rotation_days` as the account's maximum key age when `key_rotation` is true. `key_rotation`
 * false (or absent) sets none and leaves a policy set through the policy's own route as it is: storing
 * keys never turns a policy off (that route does, with `max_key_age_days: null`).
 */
export async function applyRotationRequest(
  encryption: RotationRequest | undefined,
  owner: KeyOwner,
  accountId: string,
  policy: KeyAgePolicy | undefined,
): Promise<RotationOutcome> {
  const days = encryption?.rotation_days;
  if (encryption?.key_rotation !== true) {
    if (days === undefined) return NOTHING;
    return {
      maxKeyAgeDays: undefined,
      warnings: [`encryption.rotation_days ${days} was not applied: key_rotation is not true, so no maximum key age was set`],
    };
  }
  if (owner === 'platform') {
    return { maxKeyAgeDays: undefined, warnings: ["encryption.key_rotation is not applied to platform keys: the maximum key age is an account's policy"] };
  }
  if (days === undefined) {
    const alternative = policy === undefined ? '' : `, or use ${policy.route}`;
    return { maxKeyAgeDays: undefined, warnings: [`encryption.key_rotation without rotation_days sets no maximum key age; send rotation_days${alternative}`] };
  }
  if (policy === undefined) {
    return {
      maxKeyAgeDays: undefined,
      warnings: [`encryption.rotation_days ${days} is not enforced: no loaded plugin keeps a maximum key age (the rotation plugin)`],
    };
  }
  await policy.setMaxKeyAgeDays(accountId, days);
  return {
    maxKeyAgeDays: days,
    warnings: [
      `encryption.rotation_days ${days} is now the account's maximum key age (max_key_age_days ${days}, as ${policy.route} sets it): a provider key older than ${days} days raises a rotation_due alert; it is not rotated by itself`,
    ],
  };
}
