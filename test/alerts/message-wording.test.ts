// What an alert's message says must match its figures (QA20): a provider unavailable because its keys
// were refused has made no call to rate, so it names no "success rate 100% over the last 0 calls", which
// read as healthy in an outage page; and a spend that reaches its threshold exactly is "at" it, not above.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import { chat, createAlerts, evaluateNow, eventually, events, OPENAI_CANARY_KEY, startAlertsGateway, type AlertsGateway } from './fixture.ts';

let setup: AlertsGateway;

beforeAll(async () => {
  setup = await startAlertsGateway({ env: { KEYWAY_ALERTS_INTERVAL_MS: '3600000' } });
});
afterAll(async () => {
  await setup.stop();
});

/** An account of its own with its OpenAI key: only these calls in its health and spend. */
async function account(name: string): Promise<string> {
  const created = await call(setup.gateway, 'POST', '/v1/accounts', { name });
  const key = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
  await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], key);
  return key;
}

describe('alert messages', () => {
  test('provider_down for a provider whose every key was refused names the refusal, not a success rate of no calls', async () => {
    const key = await account('Refused Co');
    const [rule] = await createAlerts(setup, [{ type: 'provider_down', provider: 'openai', notify: ['https://receiver.test/refused'] }], key);
    setup.openai.setSticky({ kind: 'auth' });
    try {
      expect((await chat(setup, key)).status).toBeGreaterThanOrEqual(500);
    } finally {
      setup.openai.setSticky(undefined);
    }
    await evaluateNow(setup);
    const event = await eventually('the provider_down event', async () => (await events(setup.gateway, key, `?alert_id=${String(rule?.id)}`))[0]);
    expect(event.details).toMatchObject({ status: 'unavailable', requests: 0 });
    expect(event.message).toStartWith('openai is unavailable (no key of it can serve); key ');
    expect(event.message).toContain('was rejected by openai');
    expect(event.message).not.toContain('success rate');
  });

  test('a spend equal to the threshold is reported at the threshold; above it, above', async () => {
    const key = await account('Exact Co');
    expect((await chat(setup, key)).status).toBe(200);
    await setup.gateway.runtime.usage.flush();
    const usage = await call(setup.gateway, 'GET', '/v1/analytics/byok?period=today', undefined, { key });
    const spent = ((await usage.json()) as { byok_estimated_costs: number }).byok_estimated_costs;
    expect(spent).toBeGreaterThan(0);
    const [exact, below] = await createAlerts(
      setup,
      [
        { type: 'byok_cost_threshold', threshold: spent, notify: ['https://receiver.test/exact'] },
        { type: 'byok_cost_threshold', threshold: spent / 2, notify: ['https://receiver.test/below'] },
      ],
      key,
    );
    await evaluateNow(setup);
    const messageOf = async (id: unknown) =>
      (await eventually('the cost event', async () => (await events(setup.gateway, key, `?alert_id=${String(id)}`))[0])).message;
    expect(await messageOf(exact?.id)).toEndWith(', at the alert threshold.');
    expect(await messageOf(below?.id)).toContain(', above the alert threshold of $');
  });
});
