// The seed's `encryption: {key_rotation, rotation_days}` on POST /v1/providers/keys (QA15 F4): applied
// as the account's maximum key age by the plugin that keeps one, or a warning that says why not.

import { describe, expect, test } from 'bun:test';
import { applyRotationRequest } from '../../core/credentials/rotation-request.ts';
import type { KeyAgePolicy } from '../../core/spec/plugin.ts';

function recordingPolicy(): KeyAgePolicy & { set: Array<[string, number]> } {
  const set: Array<[string, number]> = [];
  return {
    set,
    route: 'PUT /v1/providers/keys/rotation-policy',
    async setMaxKeyAgeDays(accountId, days) {
      set.push([accountId, days]);
    },
  };
}

describe('the seed encryption block', () => {
  test('key_rotation with rotation_days sets the maximum key age and says what it does', async () => {
    const policy = recordingPolicy();
    const outcome = await applyRotationRequest({ key_rotation: true, rotation_days: 90 }, 'account', 'acct_1', policy);
    expect(policy.set).toEqual([['acct_1', 90]]);
    expect(outcome.maxKeyAgeDays).toBe(90);
    expect(outcome.warnings).toHaveLength(1);
    expect(outcome.warnings[0]).toContain('max_key_age_days 90, as PUT /v1/providers/keys/rotation-policy sets it');
    expect(outcome.warnings[0]).toContain('it is not rotated by itself');
  });

  test('without a plugin that keeps the policy: not enforced, and the answer says so', async () => {
    const outcome = await applyRotationRequest({ key_rotation: true, rotation_days: 90 }, 'account', 'acct_1', undefined);
    expect(outcome.maxKeyAgeDays).toBeUndefined();
    expect(outcome.warnings).toEqual(['encryption.rotation_days 90 is not enforced: no loaded plugin keeps a maximum key age (the rotation plugin)']);
  });

  test('key_rotation false sets nothing, and leaves a policy in force as it is', async () => {
    const policy = recordingPolicy();
    expect(await applyRotationRequest({ key_rotation: false }, 'account', 'acct_1', policy)).toEqual({ maxKeyAgeDays: undefined, warnings: [] });
    const withDays = await applyRotationRequest({ key_rotation: false, rotation_days: 30 }, 'account', 'acct_1', policy);
    expect(withDays.warnings).toEqual(['encryption.rotation_days 30 was not applied: key_rotation is not true, so no maximum key age was set']);
    expect(policy.set).toEqual([]);
  });

  test('key_rotation without rotation_days, and platform keys, set nothing and say why', async () => {
    const policy = recordingPolicy();
    const noDays = await applyRotationRequest({ key_rotation: true }, 'account', 'acct_1', policy);
    expect(noDays.warnings).toEqual([
      'encryption.key_rotation without rotation_days sets no maximum key age; send rotation_days, or use PUT /v1/providers/keys/rotation-policy',
    ]);
    const platform = await applyRotationRequest({ key_rotation: true, rotation_days: 90 }, 'platform', 'acct_operator', policy);
    expect(platform.warnings[0]).toContain('not applied to platform keys');
    expect(policy.set).toEqual([]);
  });

  test('no block, or a block that asks for nothing, answers nothing', async () => {
    expect(await applyRotationRequest(undefined, 'account', 'acct_1', recordingPolicy())).toEqual({ maxKeyAgeDays: undefined, warnings: [] });
    expect(await applyRotationRequest({}, 'account', 'acct_1', recordingPolicy())).toEqual({ maxKeyAgeDays: undefined, warnings: [] });
  });
});
