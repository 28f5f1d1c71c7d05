// provider_down fires from the disable itself, not only from the alert job's next pass (QA19 L3): the job
// polls (every 30 s by default), and a provider the health check disabled and a successful probe moved
// to `recovering` before that pass was never reported. The job here runs once an hour, so only the
// disable can fire the alert; it still fires once per rule, subject and period.

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

/** An account of its own (only these calls in its health), its OpenAI key, and a policy that disables after 3 failures. */
async function flappingAccount(): Promise<{ accountId: string; key: string }> {
  const created = await call(setup.gateway, 'POST', '/v1/accounts', { name: 'Flapping Co' });
  const body = (await created.json()) as { id: string; admin_key: { api_key: string } };
  const key = body.admin_key.api_key;
  await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], key);
  const policy = await call(setup.gateway, 'POST', '/v1/providers/health-check', { auto_disable: true, min_samples: 3, health_threshold: 90 }, { key });
  expect(policy.status).toBe(200);
  return { accountId: body.id, key };
}

describe('provider_down', () => {
  test('a provider disabled and moved to recovering before the next pass is alerted, once per period', async () => {
    const { accountId, key } = await flappingAccount();
    const [down] = await createAlerts(setup, [{ type: 'provider_down', provider: 'openai', notify: ['https://receiver.test/flapping'] }], key);
    const alertId = String(down?.id);
    const runtime = setup.gateway.runtime;
    const record = runtime.snapshots.current.accountKeys.get(accountId)?.get('openai')?.[0];
    if (record === undefined) throw new Error('no OpenAI key in the account');
    setup.openai.setSticky({ kind: 'server_error' });
    try {
      for (let count = 0; count < 4; count++) expect((await chat(setup, key)).status).toBeGreaterThanOrEqual(500);
    } finally {
      setup.openai.setSticky(undefined);
    }
    // The models endpoint still answers: a probe moves the provider on before any pass of the job.
    runtime.health.recordProbe(record, true, undefined);
    expect(runtime.services.providerHealth.report(accountId).find((report) => report.name === 'openai')?.status).toBe('recovering');
    const event = await eventually('the provider_down event', async () => {
      const found = (await events(setup.gateway, key, `?alert_id=${alertId}`))[0];
      return found !== undefined && found.status !== 'delivering' ? found : undefined;
    });
    expect(event).toMatchObject({ type: 'provider_down', subject: 'openai', status: 'delivered' });
    expect(event.details.status).toBe('disabled');
    expect(event.message).toContain('openai is down (disabled by the health check)');
    expect(setup.receiver.received.some((entry) => entry.path === '/flapping' && entry.headers['x-keyway-event'] === 'alert.provider_down')).toBe(true);

    // Disabled again in the same hour (a trial call fails), and judged by a pass: still the one event.
    setup.openai.setSticky({ kind: 'server_error' });
    try {
      expect((await chat(setup, key)).status).toBeGreaterThanOrEqual(500);
    } finally {
      setup.openai.setSticky(undefined);
    }
    expect(runtime.services.providerHealth.report(accountId).find((report) => report.name === 'openai')?.status).toBe('disabled');
    await evaluateNow(setup);
    expect(await events(setup.gateway, key, `?alert_id=${alertId}`)).toHaveLength(1);
  }, 15_000);
});
