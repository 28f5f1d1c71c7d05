// POST /v1/providers/keys/rotate end to end, through the official `openai` client against the
// OpenAI simulator: immediate and gradual, test_before_switch, old_key_expires_at, state in
// GET /v1/providers and the status endpoints, signed webhooks, restart, and canaries.

import { afterEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { webhookSignature } from '../../plugins/webhooks/index.ts';
import { ManualClock } from '../../core/clock.ts';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { rmSync } from 'node:fs';
import {
  BAD_KEY,
  sharedDataDirectory,
  chatBody,
  expectNoCanary,
  NEW_KEY,
  OLD_KEY,
  rotate,
  rotateOk,
  servedKeys,
  startRotationWorld,
  type RotationWorld,
} from './fixture.ts';

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

const clientOf = (current: RotationWorld) => new OpenAI({ baseURL: `${current.gateway.url}/v1`, apiKey: current.adminKey, maxRetries: 0 });

async function providers(current: RotationWorld): Promise<Array<Record<string, unknown>>> {
  const response = await call(current.gateway, 'GET', '/v1/providers', undefined, { key: current.adminKey });
  expect(response.status).toBe(200);
  return ((await response.json()) as { providers: Array<Record<string, unknown>> }).providers;
}

describe('immediate rotation', () => {
  test('new requests move to the new key at once; the old key is retired when the grace period ends', async () => {
    const clock = new ManualClock(Date.parse('2026-03-01T12:00:00Z'));
    const dataDirectory = sharedDataDirectory();
    world = await startRotationWorld({ clock, dataDirectory });
    const client = clientOf(world);
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'before' }] });
    const answer = await rotateOk(world, { rotation_strategy: 'immediate', grace_period_minutes: 2, test_before_switch: true });
    expect(answer.status).toBe('in_progress');
    expect(answer.old_key_expires_at).toBe('2026-03-01T12:02:00.000Z');
    expect(typeof answer.new_key_id).toBe('string');
    expect(answer.new_key_id).not.toBe(world.oldKeyId);
    expect(answer.tested).toBe(true);
    for (let index = 0; index < 20; index++) await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `after ${index}` }] });
    expect(servedKeys(world.openai)).toEqual(['old', ...Array(20).fill('new')]);

    const listed = await providers(world);
    const old = listed.find((entry) => entry.key_id === world?.oldKeyId);
    const fresh = listed.find((entry) => entry.key_id === answer.new_key_id);
    expect(old?.rotation).toMatchObject({ role: 'old', status: 'in_progress', share: 0, old_key_expires_at: '2026-03-01T12:02:00.000Z' });
    expect(fresh?.rotation).toMatchObject({ role: 'new', status: 'in_progress', share: 1 });
    expect(fresh?.weight).toBe(old?.weight);

    clock.advance(2 * 60_000);
    await world.handle.tick();
    const after = await providers(world);
    expect(after.map((entry) => entry.key_id)).toEqual([answer.new_key_id]);
    expect(after[0]?.rotation).toBeUndefined();
    const status = await call(world.gateway, 'GET', `/v1/providers/keys/rotations/${answer.id}`, undefined, { key: world.adminKey });
    expect(await status.json()).toMatchObject({ status: 'completed', old_key_retired: true, completed_at: '2026-03-01T12:02:00.000Z' });
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'later' }] });
    expect(servedKeys(world.openai).at(-1)).toBe('new');
    // The audit log has the rotation, with the rotation as `after`, and never the key.
    let audit = '';
    for (let attempt = 0; attempt < 100 && !audit.includes('/v1/providers/keys/rotate'); attempt++) {
      await Bun.sleep(20);
      audit = await (await call(world.gateway, 'GET', '/v1/audit-logs?type=admin&period=today', undefined, { key: world.adminKey })).text();
    }
    expect(audit).toContain(String(answer.id));
    await expectNoCanary(world, [JSON.stringify(answer), JSON.stringify(after), audit]);
  });
});

describe('gradual rotation', () => {
  test('traffic moves over the grace period and the old key is retired at its end', async () => {
    const clock = new ManualClock(Date.parse('2026-03-01T12:00:00Z'));
    const dataDirectory = sharedDataDirectory();
    world = await startRotationWorld({ clock, dataDirectory });
    const client = clientOf(world);
    const answer = await rotateOk(world, { rotation_strategy: 'gradual', grace_period_minutes: 10 });
    expect(answer.old_key_expires_at).toBe('2026-03-01T12:10:00.000Z');
    const send = async (count: number) => {
      world?.openai.reset();
      for (let index = 0; index < count; index++) await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `m${index}` }] });
      return servedKeys((world as RotationWorld).openai);
    };
    expect((await send(30)).filter((key) => key === 'old').length).toBe(30);
    clock.advance(10 * 60_000 - 1);
    expect((await send(30)).filter((key) => key === 'new').length).toBeGreaterThanOrEqual(28);
    clock.advance(1);
    // At old_key_expires_at, before the job ran: the old key takes nothing.
    expect(await send(30)).toEqual(Array(30).fill('new'));
    await world.handle.tick();
    expect((await providers(world)).map((entry) => entry.key_id)).toEqual([answer.new_key_id]);
  });
});

describe('edge cases', () => {
  test('two rotations of one key racing: one is started, the other is 409 and leaves no key behind', async () => {
    world = await startRotationWorld();
    const responses = await Promise.all([rotate(world, { test_before_switch: false }), rotate(world, { new_api_key: BAD_KEY, test_before_switch: false })]);
    expect(responses.map((response) => response.status).sort()).toEqual([201, 409]);
    expect(await providers(world)).toHaveLength(2);
  });

  test('the new key removed during an immediate rotation: the old key serves until it expires instead of failing', async () => {
    const clock = new ManualClock(Date.parse('2026-03-01T12:00:00Z'));
    world = await startRotationWorld({ clock });
    const answer = await rotateOk(world, { rotation_strategy: 'immediate', grace_period_minutes: 5 });
    const removed = await call(world.gateway, 'DELETE', `/v1/providers/keys/${answer.new_key_id}`, undefined, { key: world.adminKey });
    expect(removed.status).toBe(204);
    const response = await call(world.gateway, 'POST', '/v1/chat/completions', chatBody(), { key: world.adminKey });
    expect(response.status).toBe(200);
    expect(servedKeys(world.openai).at(-1)).toBe('old');
    clock.advance(5 * 60_000);
    const late = await call(world.gateway, 'POST', '/v1/chat/completions', chatBody(), { key: world.adminKey });
    expect(late.status).toBe(503);
  });
});

describe('platform keys', () => {
  test('the operator rotates a platform key with the same rules; it shows in GET /v1/platform/keys', async () => {
    world = await startRotationWorld({ addKey: false });
    const stored = await call(world.gateway, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: OLD_KEY }] });
    expect(stored.status).toBe(201);
    const response = await call(world.gateway, 'POST', '/v1/platform/keys/rotate', {
      provider: 'openai',
      new_api_key: NEW_KEY,
      rotation_strategy: 'immediate',
    });
    const answer = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(201);
    expect(typeof answer.old_key_expires_at).toBe('string');
    const listed = (await (await call(world.gateway, 'GET', '/v1/platform/keys')).json()) as { providers: Array<Record<string, unknown>> };
    expect(listed.providers.find((entry) => entry.key_id === answer.new_key_id)?.rotation).toMatchObject({ role: 'new', share: 1 });
    const rotations = (await (await call(world.gateway, 'GET', '/v1/platform/keys/rotations')).json()) as { rotations: Array<Record<string, unknown>> };
    expect(rotations.rotations.map((entry) => entry.id)).toEqual([answer.id]);
    // An account admin neither sees it nor may call the operator's route.
    expect(
      ((await (await call(world.gateway, 'GET', '/v1/providers/keys/rotations', undefined, { key: world.adminKey })).json()) as { rotations: unknown[] })
        .rotations,
    ).toEqual([]);
    await expectSpecError(
      await call(world.gateway, 'POST', '/v1/platform/keys/rotate', { provider: 'openai', new_api_key: BAD_KEY }, { key: world.adminKey }),
      403,
      'permission_denied',
    );
    await expectNoCanary(world, [JSON.stringify(listed), JSON.stringify(answer)]);
  });
});

describe('test_before_switch', () => {
  test('a key the provider refuses answers 422 rotation_test_failed and changes nothing', async () => {
    world = await startRotationWorld();
    const before = await providers(world);
    const response = await rotate(world, { new_api_key: BAD_KEY, test_before_switch: true });
    const body = await expectSpecError(response, 422, 'rotation_test_failed');
    expect(body.error.param).toBe('new_api_key');
    expect(JSON.stringify(body)).not.toContain(BAD_KEY);
    expect((await providers(world)).map((entry) => entry.key_id)).toEqual(before.map((entry) => entry.key_id));
    const rotations = await call(world.gateway, 'GET', '/v1/providers/keys/rotations', undefined, { key: world.adminKey });
    expect(await rotations.json()).toEqual({ rotations: [] });
    const rows = await world.gateway.runtime.store.query('SELECT COUNT(*) AS n FROM provider_keys');
    expect(Number(rows[0]?.n)).toBe(1);
    await expectNoCanary(world);
  });

  test('bad input is 400 spec-shaped; no key to rotate is 404; rotating a rotating key is 409', async () => {
    world = await startRotationWorld();
    await expectSpecError(await rotate(world, { rotation_strategy: 'sideways' }), 400, 'invalid_field');
    await expectSpecError(await rotate(world, { grace_period_minutes: -1 }), 400, 'invalid_field');
    await expectSpecError(await rotate(world, { notification_webhooks: ['http://plain.example/hook'] }), 400, 'invalid_field');
    await expectSpecError(await rotate(world, { provider: 'anthropic' }), 404, 'not_found');
    await expectSpecError(await rotate(world, { new_api_key: OLD_KEY }), 409, 'conflict');
    await rotateOk(world, { grace_period_minutes: 5 });
    await expectSpecError(await rotate(world, { key_id: world.oldKeyId, new_api_key: BAD_KEY, test_before_switch: false }), 409, 'conflict');
  });
});

describe('notifications and restart', () => {
  test('started and completed webhooks are signed with the account secret; the rotation survives a restart', async () => {
    const clock = new ManualClock(Date.parse('2026-03-01T12:00:00Z'));
    const dataDirectory = sharedDataDirectory();
    world = await startRotationWorld({ clock, dataDirectory });
    const secretResponse = await call(world.gateway, 'POST', '/v1/settings/webhook-secret', {}, { key: world.adminKey });
    const { secret } = (await secretResponse.json()) as { secret: string };
    const answer = await rotateOk(world, { rotation_strategy: 'gradual', grace_period_minutes: 30, notification_webhooks: ['https://receiver.test/rotated'] });
    await world.handle.rotations.idle();
    const started = world.receiver.received.find((entry) => entry.headers['x-keyway-event'] === 'key_rotation.started');
    expect(started?.path).toBe('/rotated');
    expect(started?.headers['x-keyway-signature']).toBe(webhookSignature(secret, started?.body ?? ''));
    expect(started?.headers['x-keyway-delivery']?.length).toBeGreaterThan(5);
    expect(JSON.parse(started?.body ?? '{}')).toMatchObject({ event: 'key_rotation.started', rotation: { id: answer.id, new_key_id: answer.new_key_id } });

    // Restart on the same database: the rotation is still in force, and completes on the new instance.
    const servers = { openai: world.openai, receiver: world.receiver, smtp: world.smtp };
    const first = world;
    await first.gateway.server.stop();
    const restarted = await startRotationWorld({ clock, servers, dataDirectory, addKey: false, adminKey: first.adminKey });
    world = {
      ...restarted,
      stop: async () => {
        await restarted.stop();
        await first.stop();
        rmSync(dataDirectory, { recursive: true, force: true });
      },
    };
    clock.advance(15 * 60_000);
    const listed = await providers(world);
    expect(listed.find((entry) => entry.key_id === first.oldKeyId)?.rotation).toMatchObject({ role: 'old', share: 0.5 });
    clock.advance(15 * 60_000);
    await world.handle.tick();
    await world.handle.rotations.idle();
    const completed = world.receiver.received.find((entry) => entry.headers['x-keyway-event'] === 'key_rotation.completed');
    expect(completed?.headers['x-keyway-signature']).toBe(webhookSignature(secret, completed?.body ?? ''));
    expect(JSON.parse(completed?.body ?? '{}')).toMatchObject({ event: 'key_rotation.completed', rotation: { id: answer.id, status: 'completed' } });
    expect((await providers(world)).map((entry) => entry.key_id)).toEqual([answer.new_key_id]);
    const bodies = world.receiver.received.map((entry) => entry.body);
    await expectNoCanary(world, bodies);
    await expectNoCanary(first, bodies);
    expect(NEW_KEY).not.toBe(OLD_KEY);
  });
});
