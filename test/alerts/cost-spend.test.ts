// A cost alert's figure is the spend the usage rows hold: the rows other instances (or this process
// before a restart) wrote, which only the roll-up has, plus this process's own, booked and not yet
// written. Taking the larger of the roll-up and the in-memory tally showed only one of the two parts.
// Usage batches are held back here (KEYWAY_USAGE_FLUSH_MS) and the alert job runs only when called.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { alertsHandleOf } from '../../plugins/alerts/index.ts';
import { formatUsd } from '../../core/catalog/nano-usd.ts';
import { nanoUsd } from '../../plugins/alerts/money.ts';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import { chat, createAlerts, events, OPENAI_CANARY_KEY, startAlertsGateway, type AlertsGateway, type EventView } from './fixture.ts';

const HELD_BACK = { KEYWAY_USAGE_FLUSH_MS: '600000', KEYWAY_ALERTS_INTERVAL_MS: '600000' };
let setup: AlertsGateway;

beforeAll(async () => {
  setup = await startAlertsGateway({ env: HELD_BACK, addKey: false });
});
afterAll(async () => {
  await setup.stop();
});

/** A new account with the OpenAI key: each test's spend is its own. */
async function account(name: string): Promise<{ id: string; key: string }> {
  const created = await call(setup.gateway, 'POST', '/v1/accounts', { name });
  const body = (await created.json()) as { id: string; admin_key: { api_key: string } };
  await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], body.admin_key.api_key);
  return { id: body.id, key: body.admin_key.api_key };
}

/** Spend the roll-up already holds for this hour: rows another instance, or this process before a restart, wrote. */
async function writtenElsewhere(accountId: string, costUsd: number): Promise<void> {
  await setup.gateway.runtime.store.execute(
    `INSERT INTO usage_rollup_hourly (account_id, hour, provider, model, team_id, project_tag, gateway_key_id, byok, requests, errors, input_tokens,
       output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, unpriced_requests, latency_ms_sum)
     VALUES (?, ?, 'openai', 'gpt-4o', '', '', 'key_elsewhere', 1, 1, 0, 0, 0, 0, 0, 0, ?, 0, 0)`,
    [accountId, new Date().toISOString().slice(0, 13), costUsd],
  );
}

/** One evaluation, as the job or a kick runs it: without writing the usage batch first. */
async function evaluate(): Promise<void> {
  const handle = alertsHandleOf(setup.gateway.runtime.services);
  if (handle === undefined) throw new Error('the alerts plugin is not loaded');
  await handle.evaluator.run();
  await handle.dispatcher.idle();
}

/** What this process booked for the account, read once its rows are written. */
async function bookedHere(accountId: string): Promise<number> {
  await setup.gateway.runtime.usage.flush();
  const rows = await setup.gateway.runtime.store.query('SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM usage_records WHERE account_id = ? AND byok = 1', [
    accountId,
  ]);
  return Number(rows[0]?.spent ?? 0);
}

async function onlyEvent(key: string, alertId: string): Promise<EventView | undefined> {
  const found = await events(setup.gateway, key, `?alert_id=${alertId}`);
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0];
}

function expectSpend(event: EventView | undefined, spent: number, threshold: number): void {
  expect(event?.details.spent_usd).toBe(nanoUsd(spent));
  expect(event?.details.spent_usd as number).toBeGreaterThanOrEqual(threshold);
  expect(event?.message).toContain(`reached ${formatUsd(nanoUsd(spent))} in the monthly period`);
}

describe('byok_cost_threshold: the spend judged and shown is all the usage rows hold', () => {
  test('the roll-up reached the threshold and this process booked more: the event shows both', async () => {
    const { id, key } = await account('Spend Both Parts');
    const threshold = 0.05;
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold, period: 'monthly', notify: ['https://receiver.test/both'] }], key);
    expect((await chat(setup, key)).status).toBe(200);
    await writtenElsewhere(id, threshold);
    await evaluate();
    const event = await onlyEvent(key, String(alert?.id));
    const here = await bookedHere(id);
    expect(here).toBeGreaterThan(0);
    // Until now the event said $0.05: the roll-up's part alone, below what the rows hold.
    expectSpend(event, threshold + here, threshold);
  });

  test('neither part reaches the threshold alone, together they do: it fires on this evaluation', async () => {
    const { id, key } = await account('Spend Split');
    const threshold = 0.05;
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold, period: 'monthly', notify: ['https://receiver.test/split'] }], key);
    expect((await chat(setup, key)).status).toBe(200);
    // A request costs far more than a ten-millionth of a dollar: together they are over the threshold.
    await writtenElsewhere(id, threshold - 1e-7);
    await evaluate();
    const event = await onlyEvent(key, String(alert?.id));
    expectSpend(event, threshold - 1e-7 + (await bookedHere(id)), threshold);
  });
});
