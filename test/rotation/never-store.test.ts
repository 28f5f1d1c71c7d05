// Never-store mode holds for rotation too: a rotation cannot put a new key's material in the database.

import { afterEach, expect, test } from 'bun:test';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { NEW_KEY, rotate, startRotationWorld, type RotationWorld } from './fixture.ts';

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

test('under never_store_keys a rotation with a plaintext new key is refused and changes nothing', async () => {
  world = await startRotationWorld({});
  const compliance = await call(world.gateway, 'PUT', '/v1/settings/compliance', { data_residency: 'never_store_keys' }, { key: world.adminKey });
  expect(compliance.status).toBe(200);
  const before = await (await call(world.gateway, 'GET', '/v1/providers', undefined, { key: world.adminKey })).text();
  const response = await rotate(world, { rotation_strategy: 'immediate', grace_period_minutes: 1, test_before_switch: false });
  const error = await expectSpecError(response, 409, 'conflict');
  expect(error.error.message).toContain('never_store_keys');
  expect(error.error.message).not.toContain(NEW_KEY);
  const after = await (await call(world.gateway, 'GET', '/v1/providers', undefined, { key: world.adminKey })).text();
  expect(after).toBe(before);
  const stored = await world.gateway.runtime.store.listActiveProviderKeys();
  expect(stored.length).toBe(1);
});
