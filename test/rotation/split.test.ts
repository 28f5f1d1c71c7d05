// Gradual rotation's traffic split on an injected clock: the new key's share follows the grace
// period (25/50/75%), a session moves once and stays, and a key pool keeps its weights (the rotating
// pair holds the old key's place). Then zero failed requests while rotating under concurrent load.

import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import { chatBody, expectNoCanary, rotateOk, servedKeys, startRotationWorld, type RotationWorld } from './fixture.ts';

const POOL_KEY = 'sk-proj-RotationCanaryPoolKey0000000000000000004';

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

async function burst(current: RotationWorld, count: number, headers: (index: number) => Record<string, string> = () => ({})): Promise<number[]> {
  const statuses: number[] = [];
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - start) }, (_, offset) =>
        call(current.gateway, 'POST', '/v1/chat/completions', chatBody(`n${start + offset}`), { key: current.adminKey, headers: headers(start + offset) }),
      ),
    );
    for (const response of batch) {
      statuses.push(response.status);
      await response.arrayBuffer();
    }
  }
  return statuses;
}

describe('gradual split on an injected clock', () => {
  test('the new key takes 25%, 50% and 75% of new requests at those points of the grace period', async () => {
    const clock = new ManualClock(Date.parse('2026-04-01T00:00:00Z'));
    world = await startRotationWorld({ clock });
    await rotateOk(world, { rotation_strategy: 'gradual', grace_period_minutes: 100 });
    for (const fraction of [0.25, 0.5, 0.75]) {
      clock.advance(25 * 60_000);
      world.openai.reset();
      const statuses = await burst(world, 400);
      expect(statuses.every((status) => status === 200)).toBe(true);
      const keys = servedKeys(world.openai);
      const share = keys.filter((key) => key === 'new').length / keys.length;
      expect(Math.abs(share - fraction)).toBeLessThan(0.07);
    }
  });

  test('a session (X-Session-Id) moves to the new key once and stays', async () => {
    const clock = new ManualClock(Date.parse('2026-04-01T00:00:00Z'));
    world = await startRotationWorld({ clock });
    await rotateOk(world, { rotation_strategy: 'gradual', grace_period_minutes: 10 });
    const moved = new Map<string, number>();
    for (let minute = 1; minute <= 10; minute++) {
      clock.advance(60_000);
      world.openai.reset();
      await burst(world, 40, (index) => ({ 'x-session-id': `session-${index}` }));
      const keys = servedKeys(world.openai);
      const bodies = world.openai.inferenceRequests().map((request) => JSON.stringify(request.body));
      keys.forEach((key, index) => {
        const session = /n(\d+)/.exec(bodies[index] ?? '')?.[1] ?? '';
        if (key === 'new' && !moved.has(session)) moved.set(session, minute);
        // Once moved, never back.
        if (key === 'old') expect(moved.has(session)).toBe(false);
      });
    }
    expect(moved.size).toBe(40);
    // Sessions moved at different times: spread over the grace period, not all at once.
    expect(new Set(moved.values()).size).toBeGreaterThan(4);
  });

  test('in a pool of two keys of equal weight, the rotating pair keeps one half', async () => {
    const clock = new ManualClock(Date.parse('2026-04-01T00:00:00Z'));
    world = await startRotationWorld({ clock });
    world.openai.state.apiKeys.add(POOL_KEY);
    await addProviderKeys(world.gateway, [{ name: 'openai', api_key: POOL_KEY }], world.adminKey);
    await rotateOk(world, { rotation_strategy: 'gradual', grace_period_minutes: 100, key_id: world.oldKeyId });
    clock.advance(50 * 60_000);
    world.openai.reset();
    await burst(world, 600);
    const keys = world.openai.inferenceRequests().map((request) => request.headers.authorization ?? '');
    const pool = keys.filter((key) => key.endsWith(POOL_KEY)).length / keys.length;
    const counts = servedKeys(world.openai);
    const fresh = counts.filter((key) => key === 'new').length / keys.length;
    const old = counts.filter((key) => key === 'old').length / keys.length;
    expect(Math.abs(pool - 0.5)).toBeLessThan(0.08);
    expect(Math.abs(fresh - 0.25)).toBeLessThan(0.07);
    expect(Math.abs(old - 0.25)).toBeLessThan(0.07);
    await expectNoCanary(world);
  });
});

// The client and the gateway share this process and its fetch's socket pool: more than ~250 requests
// open at once starve the gateway's own upstream calls (a harness limit, not Keyway's), so the load
// keeps 150 requests in flight at every moment, 600 in all, while the rotation starts and completes.
const IN_FLIGHT = 150;
const TOTAL = 600;

describe('rotation under concurrent load', () => {
  for (const strategy of ['immediate', 'gradual'] as const) {
    test(`${strategy}: ${TOTAL} requests, ${IN_FLIGHT} always in flight, while rotating and retiring: none fails`, async () => {
      world = await startRotationWorld();
      const current = world;
      const statuses: number[] = [];
      let next = 0;
      let rotation: Promise<Record<string, unknown>> | undefined;
      let completedAt: number | undefined;
      const worker = async () => {
        // Until the rotation completed and another 150 requests went after it, and at least TOTAL in all.
        while (completedAt === undefined || next < Math.max(TOTAL, completedAt + IN_FLIGHT)) {
          const index = next++;
          if (index === 200)
            rotation = rotateOk(current, { rotation_strategy: strategy, grace_period_minutes: 0.01 }).then(async (answer) => {
              await Bun.sleep(650);
              await current.handle.tick();
              completedAt = next;
              return answer;
            });
          const response = await call(current.gateway, 'POST', '/v1/chat/completions', chatBody(`load ${index}`), { key: current.adminKey });
          await response.arrayBuffer();
          statuses.push(response.status);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      const answer = (await rotation) as Record<string, unknown>;
      expect(statuses.length).toBeGreaterThanOrEqual(TOTAL);
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      const after = await Promise.all(
        Array.from({ length: 50 }, () =>
          call(current.gateway, 'POST', '/v1/chat/completions', chatBody('after'), { key: current.adminKey }).then((response) => response.status),
        ),
      );
      expect(after.every((status) => status === 200)).toBe(true);
      const status = await call(current.gateway, 'GET', `/v1/providers/keys/rotations/${answer.id}`, undefined, { key: current.adminKey });
      expect(((await status.json()) as { status: string }).status).toBe('completed');
      const keys = servedKeys(current.openai);
      expect(keys.slice(-50)).toEqual(Array(50).fill('new'));
      expect(keys.filter((key) => key === 'old').length).toBeGreaterThan(100);
    }, 30_000);
  }
});
