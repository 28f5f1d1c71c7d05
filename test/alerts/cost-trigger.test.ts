// The cost trigger sees the whole period's spend (QA17). A request that crosses a threshold triggers a
// judgement at once, but the running total it compares counted only what this process had booked
// since it started: spend booked before a restart, before the rule was created, or by another worker
// or instance left it below the threshold, and the alert waited for the next periodic pass (up to
// KEYWAY_ALERTS_INTERVAL_MS). Now a rule is judged when created, every judgement aligns the total with
// the stored spend and tells the other processes, and each process judges once at start. The periodic
// job is held back here (10 minutes), so only those paths can fire.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { ALERTS_SECTION, type AlertsSection } from '../../plugins/alerts/evaluate.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import {
  chat,
  createAlerts,
  eventually,
  events,
  OPENAI_CANARY_KEY,
  startAlertsGateway,
  type AlertsGateway,
  type EventView,
  restartAlertsGateway,
} from './fixture.ts';

const NO_PERIODIC_PASS = { KEYWAY_ALERTS_INTERVAL_MS: '600000' };
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** Spend the roll-up already holds this hour: booked before a restart, or by another process. */
async function bookedBefore(setup: AlertsGateway, accountId: string, costUsd: number): Promise<void> {
  await setup.gateway.runtime.store.execute(
    `INSERT INTO usage_rollup_hourly (account_id, hour, provider, model, team_id, project_tag, gateway_key_id, byok, requests, errors, input_tokens,
       output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, unpriced_requests, latency_ms_sum)
     VALUES (?, ?, 'openai', 'gpt-4o', '', '', 'key_before', 1, 1, 0, 0, 0, 0, 0, 0, ?, 0, 0)`,
    [accountId, new Date().toISOString().slice(0, 13), costUsd],
  );
}

/** What one chat request of the fixture costs: booked on an account of its own, read from the rows. */
async function requestCost(setup: AlertsGateway): Promise<number> {
  const { id, key } = await account(setup, 'Cost Probe');
  expect((await chat(setup, key)).status).toBe(200);
  await setup.gateway.runtime.usage.flush();
  const rows = await setup.gateway.runtime.store.query('SELECT SUM(cost_usd) AS cost FROM usage_records WHERE account_id = ?', [id]);
  return Number(rows[0]?.cost);
}

async function account(setup: AlertsGateway, name: string): Promise<{ id: string; key: string }> {
  const created = await call(setup.gateway, 'POST', '/v1/accounts', { name: `${name} ${crypto.randomUUID().slice(0, 8)}` });
  const body = (await created.json()) as { id: string; admin_key: { api_key: string } };
  await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], body.admin_key.api_key);
  return { id: body.id, key: body.admin_key.api_key };
}

function firedWithin(setup: AlertsGateway, key: string, alertId: string): Promise<EventView> {
  return eventually(`the event of ${alertId}`, async () => (await events(setup.gateway, key, `?alert_id=${alertId}`))[0]);
}

describe('byok_cost_threshold: the trigger counts spend booked elsewhere', () => {
  test('a rule created when the period already passed its threshold fires at once', async () => {
    const setup = await startAlertsGateway({ env: NO_PERIODIC_PASS, addKey: false });
    stops.push(() => setup.stop());
    const { id, key } = await account(setup, 'Already Over');
    await bookedBefore(setup, id, 5);
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold: 4, period: 'monthly', notify: ['https://receiver.test/over'] }], key);
    const [event] = await events(setup.gateway, key, `?alert_id=${String(alert?.id)}`);
    expect(event?.details.spent_usd).toBe(5);
  });

  test('spend booked before the rule: the request that crosses the threshold fires it', async () => {
    const setup = await startAlertsGateway({ env: NO_PERIODIC_PASS, addKey: false });
    stops.push(() => setup.stop());
    const cost = await requestCost(setup);
    const { id, key } = await account(setup, 'Near Threshold');
    const threshold = 2;
    await bookedBefore(setup, id, threshold - cost / 2);
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold, period: 'monthly', notify: ['https://receiver.test/near'] }], key);
    const alertId = String(alert?.id);
    expect(await events(setup.gateway, key, `?alert_id=${alertId}`)).toEqual([]);
    expect((await chat(setup, key)).status).toBe(200);
    const event = await firedWithin(setup, key, alertId);
    expect(event.details.spent_usd as number).toBeGreaterThanOrEqual(threshold);
  });

  test('after a restart: the first crossing fires, not the next periodic pass', async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-alerts-trigger-'));
    stops.push(async () => rmSync(dataDirectory, { recursive: true, force: true }));
    const env = { ...NO_PERIODIC_PASS, KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}` };
    const first = await startAlertsGateway({ env, addKey: false });
    const cost = await requestCost(first);
    const { id, key } = await account(first, 'Restarted');
    const threshold = 3;
    const [alert] = await createAlerts(
      first,
      [{ type: 'byok_cost_threshold', threshold, period: 'monthly', notify: ['https://receiver.test/restarted'] }],
      key,
    );
    // Booked before the restart, below the threshold by half a request.
    await bookedBefore(first, id, threshold - cost / 2);
    await first.gateway.stop();

    const second = await restartAlertsGateway(first, env, stops);
    // The pass each process makes a second after it starts.
    await Bun.sleep(1500);
    expect(await events(second.gateway, key, `?alert_id=${String(alert?.id)}`)).toEqual([]);
    expect((await chat(second, key)).status).toBe(200);
    const event = await firedWithin(second, key, String(alert?.id));
    expect(event.details.spent_usd as number).toBeGreaterThanOrEqual(threshold);
  }, 15_000);

  test('two instances: the one that serves the crossing request fires it, from the spend the other judged', async () => {
    const hub = new LocalClusterHub();
    // One database, so one master key for both.
    const shared = { ...NO_PERIODIC_PASS, KEYWAY_MASTER_KEYS: `1:${generateMasterKey()}` };
    const first = await startAlertsGateway({ env: shared, addKey: false, cluster: hub.join() });
    stops.push(() => first.stop());
    const second = await startAlertsGateway({
      env: { ...shared, KEYWAY_DATABASE_URL: `file:${join(first.gateway.dataDirectory, 'keyway.db')}` },
      servers: first,
      addKey: false,
      cluster: hub.join(),
    });
    stops.push(() => second.gateway.stop());
    const cost = await requestCost(first);
    const { id, key } = await account(first, 'Two Instances');
    const threshold = 1;
    await bookedBefore(first, id, threshold - cost / 2);
    // Past the second instance's own start pass: only the first instance's judgement can tell it the spend.
    await Bun.sleep(1500);
    const [alert] = await createAlerts(first, [{ type: 'byok_cost_threshold', threshold, period: 'monthly', notify: ['https://receiver.test/two'] }], key);
    const alertId = String(alert?.id);
    await eventually('the rule on the second instance', async () =>
      second.gateway.runtime.services.snapshot.section<AlertsSection>(ALERTS_SECTION)?.byAccount.get(id)?.length === 1 ? true : undefined,
    );
    expect((await chat({ ...second, adminKey: key }, key)).status).toBe(200);
    const event = await firedWithin(second, key, alertId);
    expect(event.details.spent_usd as number).toBeGreaterThanOrEqual(threshold);
  }, 15_000);
});
