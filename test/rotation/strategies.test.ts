// A rotating pair is one key to every routing strategy, `direct` (one key, no fallback) included: an
// immediate rotation with no grace period sends every new request to the new key and fails none (QA16:
// `direct` planned the old key alone half the time, the rotation dropped it, and the request got 503
// no_provider_available), a gradual one gives the new key its share, and in a pool the pair keeps the
// old key's weight.

import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import { chatBody, rotateOk, servedKeys, startRotationWorld, type RotationWorld } from './fixture.ts';

const POOL_KEY = 'sk-proj-RotationCanaryPoolKey0000000000000000004';
const STRATEGIES = ['direct', 'fallback_chain', 'cost_optimized', 'byok_preferred'] as const;

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

/** `count` chat requests routed by `strategy`, 50 at a time: their statuses. */
async function burst(current: RotationWorld, count: number, strategy: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - start) }, (_, offset) =>
        call(current.gateway, 'POST', '/v1/chat/completions', { ...chatBody(`n${start + offset}`), routing: { strategy } }, { key: current.adminKey }),
      ),
    );
    for (const response of batch) {
      statuses.push(response.status);
      await response.arrayBuffer();
    }
  }
  return statuses;
}

describe('immediate rotation with no grace period, under every strategy', () => {
  for (const strategy of STRATEGIES) {
    test(`${strategy}: every new request is served by the new key, none fails`, async () => {
      world = await startRotationWorld();
      await rotateOk(world, { rotation_strategy: 'immediate', grace_period_minutes: 0, test_before_switch: false });
      world.openai.reset();
      const statuses = await burst(world, 100, strategy);
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      expect(servedKeys(world.openai)).toEqual(Array(100).fill('new'));
    });
  }
});

describe('direct: one key per request, the pair counted as one', () => {
  test('a gradual rotation gives the new key its share (25% a quarter into the grace period)', async () => {
    const clock = new ManualClock(Date.parse('2026-04-01T00:00:00Z'));
    world = await startRotationWorld({ clock });
    await rotateOk(world, { rotation_strategy: 'gradual', grace_period_minutes: 100 });
    clock.advance(25 * 60_000);
    world.openai.reset();
    const statuses = await burst(world, 400, 'direct');
    expect(statuses.every((status) => status === 200)).toBe(true);
    const keys = servedKeys(world.openai);
    expect(Math.abs(keys.filter((key) => key === 'new').length / keys.length - 0.25)).toBeLessThan(0.07);
  });

  test('in a pool of two keys of equal weight, the rotating pair keeps one half', async () => {
    world = await startRotationWorld();
    world.openai.state.apiKeys.add(POOL_KEY);
    await addProviderKeys(world.gateway, [{ name: 'openai', api_key: POOL_KEY }], world.adminKey);
    await rotateOk(world, { rotation_strategy: 'immediate', grace_period_minutes: 0, key_id: world.oldKeyId });
    world.openai.reset();
    const statuses = await burst(world, 600, 'direct');
    expect(statuses.every((status) => status === 200)).toBe(true);
    const keys = servedKeys(world.openai);
    expect(keys.filter((key) => key === 'old')).toEqual([]);
    expect(Math.abs(keys.filter((key) => key === 'new').length / keys.length - 0.5)).toBeLessThan(0.08);
  });
});
