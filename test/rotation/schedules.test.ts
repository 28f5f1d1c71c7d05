// Rotation schedules on an injected clock: the API (next_run_at, list, delete, 400s), a due run with a
// test key source (fetch, and mint when the source can) that rotates, a due run without a source that
// raises rotation_due and e-mails notification_email, the run-once claim with two gateways on one
// database, and the account's maximum key age.

import { afterEach, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../core/clock.ts';
import { KEY_MATERIAL_RULE } from '../../core/spec/key-material.ts';
import type { PluginSource } from '../../core/registry.ts';
import { definePlugin, PLUGIN_API_VERSION, type KeyReference } from '../../core/spec/plugin.ts';
import { alertsHandleOf } from '../../plugins/alerts/index.ts';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { expectNoCanary, NEW_KEY, OLD_KEY, servedKeys, sharedDataDirectory, startRotationWorld, type RotationWorld } from './fixture.ts';

const MINTED_KEYS = ['sk-proj-RotationCanaryMintedKey000000000000000005', 'sk-proj-RotationCanaryMintedKey000000000000000006'];
let minted = 0;

/** What the test key sources were asked, across every gateway of a test. */
const asked: Array<{ call: 'fetch' | 'mint' | 'revoke'; locator: string; version?: string }> = [];

const testSources: PluginSource[] = [
  {
    source: 'test',
    definition: definePlugin({
      name: 'key-source-test-store',
      version: '1.0.0',
      apiVersion: PLUGIN_API_VERSION,
      kind: 'key-source',
      setup: () => ({
        keySource: {
          name: 'test-store',
          validate: (reference: KeyReference) => (reference.locator.startsWith('secret/') ? undefined : "the locator must start with 'secret/'"),
          async fetch(reference: KeyReference) {
            asked.push({ call: 'fetch', locator: reference.locator });
            await Bun.sleep(20);
            return { apiKey: NEW_KEY, version: '7' };
          },
        },
      }),
    }),
  },
  {
    source: 'test',
    definition: definePlugin({
      name: 'key-source-test-minter',
      version: '1.0.0',
      apiVersion: PLUGIN_API_VERSION,
      kind: 'key-source',
      setup: () => ({
        keySource: {
          name: 'test-minter',
          validate: () => undefined,
          fetch: async () => {
            throw new Error('this source only mints');
          },
          async mint(reference: KeyReference) {
            asked.push({ call: 'mint', locator: reference.locator });
            const index = minted++ % MINTED_KEYS.length;
            return { apiKey: MINTED_KEYS[index] as string, version: `minted-${index + 1}` };
          },
          async revoke(reference: KeyReference, version: string) {
            asked.push({ call: 'revoke', locator: reference.locator, version });
          },
        },
      }),
    }),
  },
];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  asked.length = 0;
  minted = 0;
});

async function world(options: Parameters<typeof startRotationWorld>[0] = {}): Promise<RotationWorld> {
  const started = await startRotationWorld({ extraPlugins: testSources, ...options });
  cleanups.push(() => started.stop());
  return started;
}

async function schedule(current: RotationWorld, body: Record<string, unknown>): Promise<Response> {
  return call(current.gateway, 'POST', '/v1/providers/keys/rotation-schedule', { provider: 'openai', ...body }, { key: current.adminKey });
}

async function scheduleOk(current: RotationWorld, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await schedule(current, body);
  const answer = (await response.json()) as Record<string, unknown>;
  expect({ status: response.status, answer }).toMatchObject({ status: 201 });
  return answer;
}

/** One chat call with the account's admin key, answered 200: which key served it is the test's question. */
async function chatOk(current: RotationWorld): Promise<Response> {
  const response = await call(
    current.gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
    { key: current.adminKey },
  );
  expect(response.status).toBe(200);
  return response;
}

async function listSchedules(current: RotationWorld): Promise<Array<Record<string, unknown>>> {
  const response = await call(current.gateway, 'GET', '/v1/providers/keys/rotation-schedule', undefined, { key: current.adminKey });
  return ((await response.json()) as { schedules: Array<Record<string, unknown>> }).schedules;
}

describe('the schedule API', () => {
  test('answers the schedule with next_run_at in its time zone; lists and deletes', async () => {
    const clock = new ManualClock(Date.parse('2026-01-15T10:00:00Z'));
    const current = await world({ clock });
    const monthly = await scheduleOk(current, { schedule: '0 0 1 * *', notification_email: 'security@company.com' });
    expect(monthly).toMatchObject({ object: 'key_rotation_schedule', provider: 'openai', timezone: 'UTC', next_run_at: '2026-02-01T00:00:00.000Z' });
    expect(String(monthly.id)).toMatch(/^rsch_/);
    const berlin = await scheduleOk(current, {
      schedule: '30 2 * * sun',
      timezone: 'Europe/Berlin',
      key_source: { source: 'test-store', locator: 'secret/openai' },
    });
    expect(berlin.next_run_at).toBe('2026-01-18T01:30:00.000Z');
    expect((await listSchedules(current)).map((entry) => entry.id).sort()).toEqual([String(monthly.id), String(berlin.id)].sort());
    const removed = await call(current.gateway, 'DELETE', `/v1/providers/keys/rotation-schedule/${monthly.id}`, undefined, { key: current.adminKey });
    expect(removed.status).toBe(204);
    expect((await listSchedules(current)).map((entry) => entry.id)).toEqual([berlin.id]);
    const again = await call(current.gateway, 'DELETE', `/v1/providers/keys/rotation-schedule/${monthly.id}`, undefined, { key: current.adminKey });
    await expectSpecError(again, 404, 'not_found');
  });

  test("re-running the seed's call answers the schedule it made (200), not a second one; another schedule of the same key and time is a 409", async () => {
    const current = await world({ clock: new ManualClock(Date.parse('2026-01-15T10:00:00Z')) });
    const seed = { schedule: '0 0 1 * *', notification_email: 'security@company.com' };
    const first = await scheduleOk(current, seed);
    const rerun = await schedule(current, { ...seed, schedule: ' 0 0 1 * * ' });
    expect(rerun.status).toBe(200);
    expect(await rerun.json()).toEqual(first);
    expect((await listSchedules(current)).map((entry) => entry.id)).toEqual([first.id]);
    // Same key and cron, other settings: both would fire the same minute, the second refused as in progress.
    const conflict = await expectSpecError(await schedule(current, { ...seed, notification_email: 'ops@company.com' }), 409, 'conflict');
    expect(conflict.error.message).toContain(String(first.id));
    // Another time, or another time zone, is another schedule.
    const weekly = await schedule(current, { ...seed, schedule: '0 0 * * 1' });
    expect(weekly.status).toBe(201);
    const berlin = await schedule(current, { ...seed, timezone: 'Europe/Berlin' });
    expect(berlin.status).toBe(201);
    expect(await listSchedules(current)).toHaveLength(3);
  });

  test('invalid cron, time zone, key source or e-mail is 400 spec-shaped, naming the field', async () => {
    const current = await world();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ schedule: '0 0 31 2 *' }, 'schedule'],
      [{ schedule: '61 * * * *' }, 'schedule'],
      [{ schedule: 'every day' }, 'schedule'],
      [{ schedule: '0 0 * * *', timezone: 'Mars/Base' }, 'timezone'],
      [{ schedule: '0 0 * * *', key_source: { source: 'nowhere', locator: 'x' } }, 'key_source.source'],
      [{ schedule: '0 0 * * *', key_source: { source: 'test-store', locator: 'kv/openai' } }, 'key_source.locator'],
      [{ schedule: '0 0 * * *', notification_email: 'not an address' }, 'notification_email'],
      [{ schedule: '0 0 * * *', provider: 'anthropic' }, 'provider'],
    ];
    for (const [body, param] of cases) {
      const answer = await expectSpecError(await schedule(current, body), 400, 'invalid_field');
      expect(answer.error.param).toBe(param);
    }
  });
});

describe('due runs', () => {
  test('with a key source: fetches the new key, tests it and rotates; next_run_at moves on', async () => {
    const clock = new ManualClock(Date.parse('2026-01-31T23:00:00Z'));
    const current = await world({ clock });
    const created = await scheduleOk(current, {
      schedule: '0 0 1 * *',
      key_source: { source: 'test-store', locator: 'secret/openai' },
      rotation_strategy: 'immediate',
      grace_period_minutes: 1,
    });
    await current.handle.tick();
    expect(asked).toEqual([]);
    clock.advance(60 * 60_000);
    await current.handle.tick();
    expect(asked).toEqual([{ call: 'fetch', locator: 'secret/openai' }]);
    const [listed] = await listSchedules(current);
    expect(listed).toMatchObject({ id: created.id, last_status: 'rotated', next_run_at: '2026-03-01T00:00:00.000Z', last_run_at: '2026-02-01T00:00:00.000Z' });
    const rotations = await call(current.gateway, 'GET', '/v1/providers/keys/rotations', undefined, { key: current.adminKey });
    const [rotation] = ((await rotations.json()) as { rotations: Array<Record<string, unknown>> }).rotations;
    expect(rotation).toMatchObject({ schedule_id: created.id, rotation_strategy: 'immediate', tested: true, old_key_id: current.oldKeyId });
    await chatOk(current);
    expect(servedKeys(current.openai).at(-1)).toBe('new');
    await expectNoCanary(current);
  });

  test('a source that mints is asked to mint; the key it minted is revoked when a later rotation retires it', async () => {
    const clock = new ManualClock(Date.parse('2026-01-31T23:59:00Z'));
    const current = await world({ clock });
    for (const key of MINTED_KEYS) current.openai.state.apiKeys.add(key);
    await scheduleOk(current, {
      schedule: '0 0 * * *',
      key_source: { source: 'test-minter', locator: 'proj_1' },
      rotation_strategy: 'immediate',
      grace_period_minutes: 1,
    });
    clock.advance(60_000);
    await current.handle.tick();
    expect(asked).toEqual([{ call: 'mint', locator: 'proj_1' }]);
    // The old key was not minted by the source: retiring it revokes nothing.
    clock.advance(2 * 60_000);
    await current.handle.tick();
    await current.handle.rotations.idle();
    expect(asked.filter((entry) => entry.call === 'revoke')).toEqual([]);
    // The next day's run mints again; when that rotation retires the first minted key, the source revokes it.
    clock.advance(24 * 60 * 60_000);
    await current.handle.tick();
    clock.advance(2 * 60_000);
    await current.handle.tick();
    await current.handle.rotations.idle();
    expect(asked).toEqual([
      { call: 'mint', locator: 'proj_1' },
      { call: 'mint', locator: 'proj_1' },
      { call: 'revoke', locator: 'proj_1', version: 'minted-1' },
    ]);
    expect((await listSchedules(current))[0]?.last_status).toBe('rotated');
    await chatOk(current);
    expect(current.openai.inferenceRequests().at(-1)?.headers.authorization).toBe(`Bearer ${MINTED_KEYS[1]}`);
    await expectNoCanary(current);
  });

  test('without a source: rotation_due reaches notification_email over SMTP and the alert history', async () => {
    const clock = new ManualClock(Date.parse('2026-01-31T23:59:00Z'));
    const current = await world({ clock });
    const created = await scheduleOk(current, { schedule: '0 0 1 * *', notification_email: 'security@company.com' });
    clock.advance(60_000);
    await current.handle.tick();
    await alertsHandleOf(current.gateway.runtime.services)?.dispatcher.idle();
    const mail = current.smtp.received.find((entry) => entry.to.includes('security@company.com'));
    expect(mail?.subject).toContain('rotation_due');
    expect(mail?.text).toContain('openai');
    const events = await call(current.gateway, 'GET', '/v1/alerts/events', undefined, { key: current.adminKey });
    const history = ((await events.json()) as { events: Array<Record<string, unknown>> }).events;
    expect(history.find((event) => event.type === 'rotation_due')).toMatchObject({ subject: created.id });
    expect((await listSchedules(current))[0]).toMatchObject({ last_status: 'alerted', next_run_at: '2026-03-01T00:00:00.000Z' });
    await expectNoCanary(
      current,
      current.smtp.received.map((entry) => entry.raw),
    );
  });
});

describe('due runs from a key file', () => {
  /** NEW_KEY with one letter made accented, as an editor that "fixed" the file might leave it. */
  const ACCENTED_KEY = NEW_KEY.replace('Canary', 'Canäry');

  function keyDirectory(files: Record<string, string>): string {
    const directory = mkdtempSync(join(tmpdir(), 'keyway-rotation-keys-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(join(directory, name), content);
      chmodSync(join(directory, name), 0o600);
    }
    return directory;
  }

  async function dueRun(file: string, content: string): Promise<RotationWorld> {
    const clock = new ManualClock(Date.parse('2026-01-31T23:59:00Z'));
    const current = await world({ clock, env: { KEYWAY_KEY_SOURCE_FILE_DIR: keyDirectory({ [file]: content }) } });
    await scheduleOk(current, {
      schedule: '0 0 * * *',
      key_source: { source: 'file', locator: file },
      rotation_strategy: 'immediate',
      grace_period_minutes: 1,
    });
    clock.advance(60_000);
    await current.handle.tick();
    return current;
  }

  test('a key that is not printable ASCII fails the run with the reason: rotation_due raised, nothing switched', async () => {
    const current = await dueRun('openai.key', `${ACCENTED_KEY}\n`);
    const [listed] = await listSchedules(current);
    expect(listed).toMatchObject({ last_status: 'failed' });
    expect(String(listed?.last_error)).toContain(KEY_MATERIAL_RULE);
    expect(String(listed?.last_error)).toContain('a character beyond ASCII');
    const events = await call(current.gateway, 'GET', '/v1/alerts/events', undefined, { key: current.adminKey });
    const due = ((await events.json()) as { events: Array<Record<string, unknown>> }).events.find((event) => event.type === 'rotation_due');
    expect(String(due?.message)).toContain(KEY_MATERIAL_RULE);
    const rotations = await call(current.gateway, 'GET', '/v1/providers/keys/rotations', undefined, { key: current.adminKey });
    expect(((await rotations.json()) as { rotations: unknown[] }).rotations).toEqual([]);
    const response = await chatOk(current);
    expect(response.headers.get('x-key-id')).toBe(current.oldKeyId);
    expect(servedKeys(current.openai).at(-1)).toBe('old');
    const texts = [JSON.stringify(listed), JSON.stringify(due), current.gateway.output.join('\n')];
    for (const text of texts) expect(text).not.toContain('Canäry');
    await expectNoCanary(current);
  });

  test('a key file ending with CRLF rotates to the key alone', async () => {
    const current = await dueRun('openai.key', `${NEW_KEY}\r\n`);
    expect((await listSchedules(current))[0]?.last_status).toBe('rotated');
    await chatOk(current);
    expect(servedKeys(current.openai).at(-1)).toBe('new');
    await expectNoCanary(current);
  });
});

describe('once per cluster', () => {
  test('two gateways on one database: a due run is claimed and run by one of them only', async () => {
    const clock = new ManualClock(Date.parse('2026-01-31T23:59:00Z'));
    const dataDirectory = sharedDataDirectory();
    cleanups.push(() => rmSync(dataDirectory, { recursive: true, force: true }));
    const first = await world({ clock, dataDirectory });
    const second = await world({ clock, dataDirectory, addKey: false, adminKey: first.adminKey, servers: first });
    await scheduleOk(first, { schedule: '* * * * *', key_source: { source: 'test-store', locator: 'secret/openai' }, grace_period_minutes: 1 });
    await second.gateway.runtime.services.snapshot.refresh();
    clock.advance(60_000);
    await Promise.all([first.handle.tick(), second.handle.tick(), first.handle.tick(), second.handle.tick()]);
    expect(asked).toEqual([{ call: 'fetch', locator: 'secret/openai' }]);
    const rows = await first.gateway.runtime.store.query('SELECT COUNT(*) AS n FROM key_rotations');
    expect(Number(rows[0]?.n)).toBe(1);
  });
});

describe('maximum key age', () => {
  // QA15 F4: the seed's encryption block used to be only echoed.
  test("the seed's encryption block (key_rotation, rotation_days 90) sets it, keeps the notification address, and older keys raise rotation_due", async () => {
    const clock = new ManualClock(Date.now());
    const current = await world({ clock, addKey: false });
    await call(
      current.gateway,
      'PUT',
      '/v1/providers/keys/rotation-policy',
      { max_key_age_days: 365, notification_email: 'keys@company.com' },
      { key: current.adminKey },
    );
    const stored = await call(
      current.gateway,
      'POST',
      '/v1/providers/keys',
      { providers: [{ name: 'openai', api_key: OLD_KEY }], encryption: { method: 'AES-256-GCM', key_rotation: true, rotation_days: 90 } },
      { key: current.adminKey },
    );
    const answer = (await stored.json()) as { providers: Array<{ key_id: string }>; encryption: Record<string, unknown>; warnings?: string[] };
    expect(stored.status).toBe(201);
    expect(answer.encryption).toMatchObject({ key_rotation: true, rotation_days: 90, max_key_age_days: 90 });
    expect(answer.warnings?.[0]).toContain('PUT /v1/providers/keys/rotation-policy');
    const policy = await call(current.gateway, 'GET', '/v1/providers/keys/rotation-policy', undefined, { key: current.adminKey });
    expect(await policy.json()).toEqual({ max_key_age_days: 90, notification_email: 'keys@company.com' });
    clock.advance(91 * 86_400_000);
    await current.handle.tick();
    await alertsHandleOf(current.gateway.runtime.services)?.dispatcher.idle();
    const events = await call(current.gateway, 'GET', '/v1/alerts/events', undefined, { key: current.adminKey });
    const history = ((await events.json()) as { events: Array<Record<string, unknown>> }).events;
    expect(history.find((event) => event.type === 'rotation_due')).toMatchObject({ subject: answer.providers[0]?.key_id });
    expect(current.smtp.received.filter((entry) => entry.to.includes('keys@company.com'))).toHaveLength(1);
  });

  // QA15 re-verification N2: an address without an age was answered, then dropped.
  test('a policy with only a notification address keeps it: the seed block that sets the age later mails there', async () => {
    const current = await world({ addKey: false });
    const put = await call(
      current.gateway,
      'PUT',
      '/v1/providers/keys/rotation-policy',
      { max_key_age_days: null, notification_email: 'keys@company.com' },
      { key: current.adminKey },
    );
    expect(await put.json()).toEqual({ max_key_age_days: null, notification_email: 'keys@company.com' });
    const read = async () => (await call(current.gateway, 'GET', '/v1/providers/keys/rotation-policy', undefined, { key: current.adminKey })).json();
    expect(await read()).toEqual({ max_key_age_days: null, notification_email: 'keys@company.com' });
    await call(
      current.gateway,
      'POST',
      '/v1/providers/keys',
      { providers: [{ name: 'openai', api_key: OLD_KEY }], encryption: { key_rotation: true, rotation_days: 90 } },
      { key: current.adminKey },
    );
    expect(await read()).toEqual({ max_key_age_days: 90, notification_email: 'keys@company.com' });
    await call(current.gateway, 'PUT', '/v1/providers/keys/rotation-policy', { max_key_age_days: null }, { key: current.adminKey });
    expect(await read()).toEqual({ max_key_age_days: null, notification_email: null });
  });

  test('key_rotation false leaves the policy as it is, and rotation_days alone is said to do nothing', async () => {
    const current = await world({ addKey: false });
    const stored = await call(
      current.gateway,
      'POST',
      '/v1/providers/keys',
      { providers: [{ name: 'openai', api_key: OLD_KEY }], encryption: { key_rotation: false, rotation_days: 30 } },
      { key: current.adminKey },
    );
    const answer = (await stored.json()) as { encryption: Record<string, unknown>; warnings?: string[] };
    expect(answer.encryption).not.toHaveProperty('max_key_age_days');
    expect(answer.warnings).toEqual(['encryption.rotation_days 30 was not applied: key_rotation is not true, so no maximum key age was set']);
    const policy = await call(current.gateway, 'GET', '/v1/providers/keys/rotation-policy', undefined, { key: current.adminKey });
    expect(await policy.json()).toEqual({ max_key_age_days: null, notification_email: null });
  });

  test('a key older than max_key_age_days raises rotation_due once per period, by e-mail', async () => {
    const clock = new ManualClock(Date.now());
    const current = await world({ clock });
    const badPolicy = await call(current.gateway, 'PUT', '/v1/providers/keys/rotation-policy', { max_key_age_days: 0 }, { key: current.adminKey });
    // The rule the 0 broke, not "expected integer or null" (0 is an integer).
    expect((await expectSpecError(badPolicy, 400, 'invalid_field')).error.message).toBe(
      "Invalid value for 'max_key_age_days': must be an integer from 1 to 3650, or null",
    );
    const policy = await call(
      current.gateway,
      'PUT',
      '/v1/providers/keys/rotation-policy',
      { max_key_age_days: 30, notification_email: 'keys@company.com' },
      { key: current.adminKey },
    );
    expect(await policy.json()).toEqual({ max_key_age_days: 30, notification_email: 'keys@company.com' });
    const dispatcher = alertsHandleOf(current.gateway.runtime.services)?.dispatcher;
    await current.handle.tick();
    await dispatcher?.idle();
    expect(current.smtp.received).toHaveLength(0);
    clock.advance(31 * 86_400_000);
    await current.handle.tick();
    await current.handle.tick();
    await dispatcher?.idle();
    const mails = current.smtp.received.filter((entry) => entry.to.includes('keys@company.com'));
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain(current.oldKeyId);
    // The next period (another 30 days) alerts again.
    clock.advance(30 * 86_400_000);
    await current.handle.tick();
    await dispatcher?.idle();
    expect(current.smtp.received.filter((entry) => entry.to.includes('keys@company.com'))).toHaveLength(2);
    await expectNoCanary(
      current,
      current.smtp.received.map((entry) => entry.raw),
    );
  });
});
