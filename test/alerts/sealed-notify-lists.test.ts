// The other notify lists are sealed at rest as alert rules' targets are (QA19): the compliance block's
// `notify`, the reconciliation settings' `notify`, and key rotation's `notification_webhooks` (of a
// rotation and of a schedule). Answers stay masked, deliveries reach the whole URL, the opened lists
// are held in memory, and lists an earlier release stored in plaintext are sealed at the next start
// with no copy left in the database: the SQLite files' bytes and a PostgreSQL dump are searched for each
// canary URL and its secret part.

import { describe, expect } from 'bun:test';
import { maskTarget } from '../../plugins/alerts/deliver.ts';
import { call } from '../helpers/gateway.ts';
import { stopNotificationServers } from './fixture.ts';
import { NEW_KEY, startRotationWorld, type RotationWorld } from '../rotation/fixture.ts';
import { canaryCheck, cleanUps, testBothStores } from './sealed-bytes.ts';

const canary = (name: string) => {
  const secret = `${name}CanaryQa19Secret${name.length}x7`;
  return { secret, url: `https://receiver.test/${name.toLowerCase()}/${secret}` };
};
const COMPLIANCE = canary('Compliance');
const RECONCILIATION = canary('Reconciliation');
const ROTATION = canary('Rotation');
const SCHEDULE = canary('Schedule');
const LEGACY_COMPLIANCE = canary('LegacyCompliance');
const LEGACY_RECONCILIATION = canary('LegacyReconciliation');
const LEGACY_ROTATION = canary('LegacyRotation');
const LEGACY_SCHEDULE = canary('LegacySchedule');
const CANARIES = [COMPLIANCE, RECONCILIATION, ROTATION, SCHEDULE, LEGACY_COMPLIANCE, LEGACY_RECONCILIATION, LEGACY_ROTATION, LEGACY_SCHEDULE].flatMap(
  (entry) => [entry.url, entry.secret],
);
const LEGACY_ROTATION_ID = 'rot_LegacyPlaintextQa19';
const LEGACY_SCHEDULE_ID = 'rsch_LegacyPlaintextQa19';
const LEGACY_ACCOUNT = 'acct_legacy_qa19';

const ON_SQLITE = 'SQLite: sealed when saved, delivered whole; plaintext lists from an earlier release sealed at start; the files hold no canary';
const stops = cleanUps();
const expectNoCanary = canaryCheck(CANARIES);

async function send(world: RotationWorld, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await call(world.gateway, method, path, body, { key: world.adminKey });
  const text = await response.text();
  expect({ path, status: response.status }).toEqual({ path, status: method === 'POST' ? 201 : 200 });
  expectNoCanary(text, `the answer of ${method} ${path}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Every table that holds one of the lists, as the store answers it. */
async function storedRows(world: RotationWorld): Promise<string> {
  const { store } = world.gateway.runtime;
  const tables = ['accounts', 'reconciliation_settings', 'key_rotations', 'key_rotation_schedules'];
  const rows = await Promise.all(tables.map((table) => store.query(`SELECT * FROM ${table}`)));
  return JSON.stringify(rows);
}

async function waitForDelivery(world: RotationWorld, path: string): Promise<void> {
  for (let attempt = 0; attempt < 250; attempt++) {
    if (world.receiver.received.some((entry) => entry.path === path)) return;
    await Bun.sleep(20);
  }
  throw new Error(`nothing was delivered to ${path}`);
}

/** Sets every list through the API, and sees the compliance alert and both rotation events reach their whole URL. */
async function storeThroughApi(world: RotationWorld): Promise<void> {
  await send(world, 'POST', '/v1/settings/webhook-secret', {});
  // FIPS-140-2 is unmet by the local backend: the compliance alert fires to the block's targets.
  await send(world, 'PUT', '/v1/settings/compliance', { byok_compliance: { encryption: 'FIPS-140-2', notify: [COMPLIANCE.url] } });
  await waitForDelivery(world, `/compliance/${COMPLIANCE.secret}`);
  await send(world, 'PUT', '/v1/reconciliation/settings', { drift_alert_percent: 7, notify: [RECONCILIATION.url] });
  await send(world, 'POST', '/v1/providers/keys/rotate', {
    provider: 'openai',
    new_api_key: NEW_KEY,
    rotation_strategy: 'immediate',
    grace_period_minutes: 0,
    test_before_switch: false,
    notification_webhooks: [ROTATION.url],
  });
  // Completed by the job, which reads the rotation back from the store.
  await world.handle.tick();
  await world.handle.rotations.idle();
  const events = world.receiver.received.filter((entry) => entry.path === `/rotation/${ROTATION.secret}`).map((entry) => entry.headers['x-keyway-event']);
  expect(events).toEqual(['key_rotation.started', 'key_rotation.completed']);
  await send(world, 'POST', '/v1/providers/keys/rotation-schedule', { provider: 'openai', schedule: '0 3 * * *', notification_webhooks: [SCHEDULE.url] });
}

/** Each list as a release before sealing stored it: in plaintext JSON. */
async function insertPlaintextLists(world: RotationWorld): Promise<void> {
  const { store } = world.gateway.runtime;
  const account = await store.getAccount('default');
  const compliance = { ...(account?.settings.compliance as Record<string, unknown>), notify: [LEGACY_COMPLIANCE.url] };
  await store.updateAccountSettings('default', { ...account?.settings, compliance });
  await store.execute('INSERT INTO reconciliation_settings (account_id, settings, updated_at) VALUES (?, ?, ?)', [
    LEGACY_ACCOUNT,
    JSON.stringify({ drift_alert_percent: 3, notify: [LEGACY_RECONCILIATION.url] }),
    new Date().toISOString(),
  ]);
  await store.execute(
    `INSERT INTO key_rotations (id, account_id, owner, provider, old_key_id, new_key_id, strategy, grace_period_minutes, started_at, expires_at,
       status, completed_at, tested, notification_webhooks, schedule_id, source_reference, source_version, created_by)
     VALUES (?, 'default', 'account', 'openai', 'key_gone_a', 'key_gone_b', 'immediate', 0, 1, 1, 'completed', 1, 0, ?, NULL, NULL, NULL, 'key_legacy')`,
    [LEGACY_ROTATION_ID, JSON.stringify([LEGACY_ROTATION.url])],
  );
  await store.execute(
    `INSERT INTO key_rotation_schedules (id, account_id, provider, key_id, schedule, timezone, notification_email, key_source, options, next_run_at, created_at)
     VALUES (?, 'default', 'openai', NULL, '0 4 1 1 *', 'UTC', NULL, NULL, ?, ?, 1)`,
    [LEGACY_SCHEDULE_ID, JSON.stringify({ rotation_strategy: 'gradual', notification_webhooks: [LEGACY_SCHEDULE.url] }), Date.now() + 86_400_000 * 300],
  );
}

async function waitForSealing(world: RotationWorld): Promise<void> {
  for (let attempt = 0; attempt < 250; attempt++) {
    const rows = await storedRows(world);
    if (![LEGACY_COMPLIANCE, LEGACY_RECONCILIATION, LEGACY_ROTATION, LEGACY_SCHEDULE].some((entry) => rows.includes(entry.secret))) return;
    await Bun.sleep(20);
  }
  throw new Error('the lists stored in plaintext were not sealed after the start');
}

/** After the restart: every list answered masked (its digest that of the whole URL), the plaintext ones included. */
async function expectOpened(world: RotationWorld): Promise<void> {
  const compliance = await send(world, 'GET', '/v1/settings/compliance');
  expect((compliance.byok_compliance as { notify: string[] }).notify).toEqual([maskTarget(LEGACY_COMPLIANCE.url)]);
  const settings = await send(world, 'GET', '/v1/reconciliation/settings');
  expect(settings.settings).toMatchObject({ drift_alert_percent: 7, notify: [maskTarget(RECONCILIATION.url)] });
  const rotations = (await send(world, 'GET', '/v1/providers/keys/rotations')).rotations as Array<{ id: string; notification_webhooks: number }>;
  expect(rotations.map((rotation) => rotation.notification_webhooks)).toEqual([1, 1]);
  const schedules = (await send(world, 'GET', '/v1/providers/keys/rotation-schedule')).schedules as Array<{ id: string; notification_webhooks: number }>;
  expect(schedules.map((schedule) => schedule.notification_webhooks)).toEqual([1, 1]);
  // The compliance block PUT back as GET answered it: the masked target stands for the opened one, and the alert reaches it whole.
  await send(world, 'PUT', '/v1/settings/compliance', { byok_compliance: compliance.byok_compliance });
  await waitForDelivery(world, `/legacycompliance/${LEGACY_COMPLIANCE.secret}`);
}

/**
 * One database under two processes: the first stores every list through the API and delivers to
 * them, then each list as an earlier release stored it; the second opens them all, seals the
 * plaintext ones and answers them masked.
 */
async function sealedAcrossRestart(env: Record<string, string>): Promise<void> {
  const first = await startRotationWorld({ env });
  await storeThroughApi(first);
  expectNoCanary(await storedRows(first), 'the rows written through the API');
  await insertPlaintextLists(first);
  await first.gateway.stop();

  const second = await startRotationWorld({ env, servers: first, addKey: false, adminKey: first.adminKey });
  stops.push(async () => {
    await second.gateway.stop();
    await stopNotificationServers(first);
  });
  await waitForSealing(second);
  await expectOpened(second);
  expectNoCanary(await storedRows(second), 'the rows after the start');
  expectNoCanary([...first.gateway.output, ...second.gateway.output].join('\n'), 'the log');
}

describe('compliance, reconciliation and rotation notify lists at rest', () => {
  testBothStores(ON_SQLITE, sealedAcrossRestart, { stops, expectNoCanary });
});
