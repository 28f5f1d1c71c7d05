// The anomaly rule on roll-up rows written straight into `usage_rollup_hourly` (14 days of an ordinary
// hour, then a spike), and de-duplication across a restart: a cost alert that fired before the
// gateway stopped does not fire again for the same period after it starts on the same database.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../helpers/gateway.ts';
import { chat, createAlerts, evaluateNow, events, settledEvent, startAlertsGateway, type AlertsGateway, restartAlertsGateway } from './fixture.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function rollupRow(setup: AlertsGateway, accountId: string, hour: string, requests: number, errors: number, costUsd: number): Promise<void> {
  await setup.gateway.runtime.store.execute(
    `INSERT INTO usage_rollup_hourly (account_id, hour, provider, model, team_id, project_tag, gateway_key_id, byok, requests, errors, input_tokens,
       output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, unpriced_requests, latency_ms_sum)
     VALUES (?, ?, 'openai', 'gpt-4o', '', '', 'key_test', 1, ?, ?, 0, 0, 0, 0, 0, ?, 0, 0)`,
    [accountId, hour, requests, errors, costUsd],
  );
}

describe('byok_usage_anomaly', () => {
  test('a spend spike against the same hour of the last 14 days fires; the ordinary history does not', async () => {
    const setup = await startAlertsGateway({ addKey: false });
    stops.push(() => setup.stop());
    const created = await call(setup.gateway, 'POST', '/v1/accounts', { name: 'Anomalous Co' });
    const account = (await created.json()) as { id: string; admin_key: { api_key: string } };
    const key = account.admin_key.api_key;
    const lastHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS;
    const hourOf = (epoch: number) => new Date(epoch).toISOString().slice(0, 13);
    for (let day = 1; day <= 14; day++) await rollupRow(setup, account.id, hourOf(lastHour - day * DAY_MS), 100 + (day % 3) * 5, 1, 2 + (day % 4) * 0.1);
    // The same request count and error rate as usual, at ten times the spend: a costlier model, say.
    await rollupRow(setup, account.id, hourOf(lastHour), 105, 1, 25);
    const [alert] = await createAlerts(setup, [{ type: 'byok_usage_anomaly', sensitivity: 'high', notify: ['https://receiver.test/anomaly'] }], key);
    await evaluateNow(setup);
    const fired = await events(setup.gateway, key, `?alert_id=${String(alert?.id)}`);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ type: 'byok_usage_anomaly', subject: 'spend:all providers', period: hourOf(lastHour), status: 'delivered' });
    expect(fired[0]?.details).toMatchObject({ metric: 'spend', value: 25, partial_hour: false });
    expect(fired[0]?.details.baseline_median as number).toBeLessThan(2.5);
    // Judged once: a second run adds nothing.
    await evaluateNow(setup);
    expect(await events(setup.gateway, key, `?alert_id=${String(alert?.id)}`)).toHaveLength(1);
  });

  test('fewer than 7 days of history give no verdict, however large the hour', async () => {
    const setup = await startAlertsGateway({ addKey: false });
    stops.push(() => setup.stop());
    const created = await call(setup.gateway, 'POST', '/v1/accounts', { name: 'New Co' });
    const account = (await created.json()) as { id: string; admin_key: { api_key: string } };
    const lastHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS;
    const hourOf = (epoch: number) => new Date(epoch).toISOString().slice(0, 13);
    for (let day = 1; day <= 5; day++) await rollupRow(setup, account.id, hourOf(lastHour - day * DAY_MS), 100, 1, 2);
    await rollupRow(setup, account.id, hourOf(lastHour), 5000, 900, 500);
    const [alert] = await createAlerts(
      setup,
      [{ type: 'byok_usage_anomaly', sensitivity: 'high', notify: ['https://receiver.test/anomaly'] }],
      account.admin_key.api_key,
    );
    await evaluateNow(setup);
    expect(await events(setup.gateway, account.admin_key.api_key, `?alert_id=${String(alert?.id)}`)).toEqual([]);
  });
});

describe('de-duplication across a restart', () => {
  test('a cost alert that fired before the restart does not fire again in the same period', async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-alerts-restart-'));
    stops.push(async () => rmSync(dataDirectory, { recursive: true, force: true }));
    const env = { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}` };
    const first = await startAlertsGateway({ env });
    const [alert] = await createAlerts(first, [
      { type: 'byok_cost_threshold', threshold: 0.000001, period: 'monthly', notify: ['https://receiver.test/restart'] },
    ]);
    const alertId = String(alert?.id);
    expect((await chat(first)).status).toBe(200);
    const before = await settledEvent(first, alertId);
    expect(before.period).toBe(new Date().toISOString().slice(0, 7));
    const adminKey = first.adminKey;
    await first.gateway.stop();

    // Same database, new process state: the in-memory tally is above the threshold again at once.
    const second = await restartAlertsGateway(first, env, stops);
    expect((await chat(second, adminKey)).status).toBe(200);
    await evaluateNow(second);
    const after = await events(second.gateway, adminKey, `?alert_id=${alertId}`);
    expect(after.map((event) => event.id)).toEqual([before.id]);
    expect(second.receiver.received.filter((entry) => entry.path === '/restart')).toHaveLength(1);
  });
});
