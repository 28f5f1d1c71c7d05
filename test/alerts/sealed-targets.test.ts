// Alert targets are sealed at rest (QA19): a Slack incoming-webhook URL or a webhook URL with a token is
// its own credential, so the alerts table keeps it only as a ciphertext of the crypto backend, bound to
// its alert, opened into memory when the rules load. Answers stay masked and deliveries reach the whole
// URL. A rule an earlier release stored in plaintext keeps working and is sealed at the next start, and
// no copy of it is left in the database: the SQLite files' bytes and a PostgreSQL dump are searched for
// each canary URL and its secret part.

import { describe, expect } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import { ALERTS_SECTION, type AlertsSection } from '../../plugins/alerts/evaluate.ts';
import { canaryCheck, cleanUps, testBothStores } from './sealed-bytes.ts';
import { chat, createAlerts, eventually, restartAlertsGateway, settledEvent, startAlertsGateway, type AlertsGateway } from './fixture.ts';

const SLACK_SECRET = 'SlackCanarySecretQa19xyz0123';
const SLACK_URL = `https://hooks.slack.com/services/T0CANARY19/B0CANARY19/${SLACK_SECRET}`;
const HOOK_TOKEN = 'HookCanaryTokenQa19abc987';
const HOOK_URL = `https://receiver.test/sealed/${HOOK_TOKEN}`;
const LEGACY_SECRET = 'LegacySlackSecretQa19zz456';
const LEGACY_URL = `https://hooks.slack.com/services/T0LEGACY19/B0LEGACY19/${LEGACY_SECRET}`;
const CANARIES = [SLACK_URL, SLACK_SECRET, HOOK_URL, HOOK_TOKEN, LEGACY_URL, LEGACY_SECRET];
const LEGACY_ID = 'alrt_LegacyPlaintextQa19xx';

const ON_SQLITE = 'SQLite: sealed when saved, delivered whole; a plaintext rule from an earlier release is sealed at start; the files hold no canary';
const stops = cleanUps();
const expectNoCanary = canaryCheck(CANARIES);

/** Creates a rule through the API with both canary targets, changes it (sending a target back masked), and checks the answers. */
async function createSealedRule(setup: AlertsGateway): Promise<string> {
  const [alert] = await createAlerts(setup, [
    { type: 'byok_cost_threshold', threshold: 0.000001, period: 'monthly', name: 'Sealed', notify: [SLACK_URL, HOOK_URL] },
  ]);
  const id = String(alert?.id);
  const shown = alert?.notify as string[];
  expectNoCanary(JSON.stringify(alert), 'the create answer');
  const patched = await call(setup.gateway, 'PATCH', `/v1/alerts/${id}`, { name: 'Sealed again', notify: shown }, { key: setup.adminKey });
  expect(patched.status).toBe(200);
  expect(((await patched.json()) as { notify: string[] }).notify).toEqual(shown);
  return id;
}

/** The stored row holds a ciphertext of the active backend, never a target. */
async function expectSealedRow(setup: AlertsGateway, id: string): Promise<void> {
  const [row] = await setup.gateway.runtime.store.query('SELECT * FROM alerts WHERE id = ?', [id]);
  expectNoCanary(JSON.stringify(row), `the row of ${id}`);
  expect(String(row?.notify_ciphertext)).toStartWith('kw1.local.v1.');
  expect(row?.notify_backend).toBe('local');
  expect(Number(row?.notify_key_version)).toBe(1);
}

/** A rule as a release before sealing stored it: its targets in plaintext JSON. */
async function insertPlaintextRule(setup: AlertsGateway): Promise<void> {
  await setup.gateway.runtime.store.execute('INSERT INTO alerts (id, account_id, type, config, notify, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    LEGACY_ID,
    'default',
    'byok_cost_threshold',
    JSON.stringify({ threshold: 0.000001, period: 'monthly' }),
    JSON.stringify([LEGACY_URL]),
    new Date().toISOString(),
    'key_legacy',
  ]);
}

/** Waits for the start's pass to seal the plaintext rule. */
async function waitForSealing(setup: AlertsGateway): Promise<void> {
  await eventually('the plaintext rule to be sealed', async () => {
    const [row] = await setup.gateway.runtime.store.query('SELECT * FROM alerts WHERE id = ?', [LEGACY_ID]);
    return row !== undefined && !JSON.stringify(row).includes(LEGACY_SECRET) ? row : undefined;
  }).catch(() => {
    throw new Error('the rule stored in plaintext was not sealed after the start');
  });
}

/** Fires the rule (spend past its threshold) and checks the whole URL was reached. */
async function expectDelivered(setup: AlertsGateway, id: string, paths: string[]): Promise<void> {
  expect((await chat(setup)).status).toBe(200);
  const event = await settledEvent(setup, id);
  expect(event.status).toBe('delivered');
  const received = setup.receiver.received.map((entry) => entry.path);
  for (const path of paths) expect(received).toContain(path);
}

/** The rules as judging and delivery read them, loaded at start: every target whole, in memory. */
function expectInMemory(setup: AlertsGateway, sealedId: string): void {
  const rules = setup.gateway.runtime.services.snapshot.section<AlertsSection>(ALERTS_SECTION)?.byAccount.get('default') ?? [];
  expect(Object.fromEntries(rules.map((rule) => [rule.id, rule.notify]))).toEqual({ [sealedId]: [SLACK_URL, HOOK_URL], [LEGACY_ID]: [LEGACY_URL] });
}

async function expectListedMasked(setup: AlertsGateway): Promise<void> {
  const response = await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: setup.adminKey });
  const text = await response.text();
  expect(response.status).toBe(200);
  expectNoCanary(text, 'GET /v1/alerts');
  const legacy = (JSON.parse(text) as { alerts: Array<{ id: string; notify: string[]; channels: string[] }> }).alerts.find((alert) => alert.id === LEGACY_ID);
  expect(legacy?.notify[0]).toMatch(/^https:\/\/hooks\.slack\.com\/ser…\/T0L…\/B0L…\/Leg… \[[0-9a-f]{8}\]$/);
  expect(legacy?.channels).toEqual(['alert-slack']);
}

/**
 * One database under two processes: the first stores a sealed rule through the API and delivers it,
 * then a rule as an earlier release stored it; the second, started on the same database, opens both,
 * seals the plaintext one and delivers it. Answers the second, still running.
 */
async function sealedAcrossRestart(env: Record<string, string>): Promise<AlertsGateway> {
  const first = await startAlertsGateway({ env });
  const id = await createSealedRule(first);
  await expectSealedRow(first, id);
  await expectDelivered(first, id, [`/services/T0CANARY19/B0CANARY19/${SLACK_SECRET}`, `/sealed/${HOOK_TOKEN}`]);
  await insertPlaintextRule(first);
  await first.gateway.stop();

  // The restarted gateway announces no admin key: the first start's stays the account's.
  const second = { ...(await restartAlertsGateway(first, env, stops)), adminKey: first.adminKey };
  expectInMemory(second, id);
  await waitForSealing(second);
  await expectListedMasked(second);
  await expectDelivered(second, LEGACY_ID, [`/services/T0LEGACY19/B0LEGACY19/${LEGACY_SECRET}`]);
  expectNoCanary(second.gateway.output.join('\n'), 'the log');
  return second;
}

describe('alert targets at rest', () => {
  testBothStores(ON_SQLITE, sealedAcrossRestart, { stops, expectNoCanary });
});
