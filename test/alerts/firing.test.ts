// Alerts firing end to end, through real requests to the OpenAI simulator: a cost threshold fires once
// per period and reaches every channel (the SMTP server gets the mail, the webhook's signature
// verifies, Slack gets its payload); deliveries are retried and the final result recorded; error
// rate, provider down and approval_pending fire; and no key reaches an event, a delivery or a log.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { addProviderKeys, call, expectSpecError, OPERATOR_KEY } from '../helpers/gateway.ts';
import {
  chat,
  createAlerts,
  DELIVERY_ATTEMPTS,
  evaluateNow,
  eventually,
  events,
  OPENAI_CANARY_KEY,
  settledEvent,
  SMTP_PASSWORD,
  startAlertsGateway,
  type AlertsGateway,
} from './fixture.ts';

let setup: AlertsGateway;
let webhookSecret = '';
const SLACK_URL = 'https://hooks.slack.com/services/T0CANARY/B0CANARY/SlackCanaryToken0001';

beforeAll(async () => {
  setup = await startAlertsGateway();
  const response = await call(setup.gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: setup.adminKey });
  expect(response.status).toBe(201);
  webhookSecret = ((await response.json()) as { secret: string }).secret;
});
afterAll(async () => {
  await setup.stop();
});

describe('byok_cost_threshold', () => {
  test('fires once per period when real spend crosses it, and every channel delivers it', async () => {
    const [alert] = await createAlerts(setup, [
      {
        type: 'byok_cost_threshold',
        provider: 'openai',
        threshold: 0.000001,
        period: 'daily',
        notify: ['finance@company.com', 'https://receiver.test/cost-hook', SLACK_URL],
      },
    ]);
    const alertId = String(alert?.id);
    // gpt-4o-mini costs a few micro-dollars here, with more than 6 decimals.
    const mini = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] };
    expect((await call(setup.gateway, 'POST', '/v1/chat/completions', mini, { key: setup.adminKey })).status).toBe(200);
    const event = await settledEvent(setup, alertId);
    expect(event).toMatchObject({ type: 'byok_cost_threshold', subject: 'openai', period: new Date().toISOString().slice(0, 10), status: 'delivered' });
    expect(event.message).toContain('above the alert threshold');
    // Money keeps its digits (QA12: "reached $0.0000 … threshold of $0.0000"), and the spend in the
    // details is the booked one, as analytics sums it, not rounded to 6 decimals.
    expect(event.message).toContain('above the alert threshold of $0.000001.');
    expect(event.message).toMatch(/reached \$0\.0*[1-9]\d* in/);
    await setup.gateway.runtime.usage.flush();
    const analytics = (await (await call(setup.gateway, 'GET', '/v1/analytics/byok?period=today', undefined, { key: setup.adminKey })).json()) as {
      by_provider: Array<{ name: string; estimated_cost: number }>;
    };
    const booked = analytics.by_provider.find((provider) => provider.name === 'openai')?.estimated_cost ?? 0;
    expect(event.details.spent_usd as number).toBeGreaterThan(0);
    expect(Math.abs((event.details.spent_usd as number) - booked)).toBeLessThan(1e-8);
    expect(Math.round((event.details.spent_usd as number) * 1e6) / 1e6).not.toBe(event.details.spent_usd);
    expect(event.deliveries.map((delivery) => [delivery.channel, delivery.ok, delivery.attempts])).toEqual([
      ['alert-email', true, 1],
      ['alert-webhook', true, 1],
      ['alert-slack', true, 1],
    ]);

    // The mail reached the SMTP server, authenticated.
    const mail = setup.smtp.received.find((entry) => entry.to.includes('finance@company.com'));
    expect(mail?.subject).toContain('byok_cost_threshold');
    expect(mail?.text).toContain(event.message);
    expect(mail?.auth).toBe('PLAIN');

    // The webhook is signed with the account's secret over the raw body.
    const hook = setup.receiver.received.find((entry) => entry.path === '/cost-hook');
    expect(hook).toBeDefined();
    const expected = `sha256=${createHmac('sha256', webhookSecret)
      .update(hook?.body ?? '')
      .digest('hex')}`;
    expect(hook?.headers['x-keyway-signature']).toBe(expected);
    expect(hook?.headers['x-keyway-event']).toBe('alert.byok_cost_threshold');
    expect(hook?.headers['x-keyway-delivery']).toMatch(/^whd_[0-9a-f]{32}$/);
    // The receiver reads what GET /v1/alerts/events shows: the period it fired in, and the rule's own details.
    const delivered = JSON.parse(hook?.body ?? '{}') as Record<string, unknown> & { details: Record<string, unknown> };
    expect(delivered).toMatchObject({
      id: event.id,
      type: 'byok_cost_threshold',
      message: event.message,
      alert_id: alertId,
      subject: 'openai',
      period: event.period,
    });
    expect(delivered.details).toMatchObject(event.details);
    expect(delivered.details.period).toBe('daily');

    // Slack got its own payload.
    const slack = setup.receiver.received.find((entry) => entry.path === '/services/T0CANARY/B0CANARY/SlackCanaryToken0001');
    const payload = JSON.parse(slack?.body ?? '{}') as { text: string; blocks: Array<{ type: string }> };
    expect(payload.text).toContain(event.message);
    expect(payload.blocks[0]?.type).toBe('header');

    // More spend in the same day: still one firing.
    expect((await chat(setup)).status).toBe(200);
    await evaluateNow(setup);
    expect(await events(setup.gateway, setup.adminKey, `?alert_id=${alertId}`)).toHaveLength(1);
  });

  test('a team filter counts only that team', async () => {
    const team = await call(
      setup.gateway,
      'POST',
      '/v1/teams',
      { name: 'Quiet Team', byok_permissions: { providers: { openai: { enabled: true } } }, members: [] },
      { key: setup.adminKey },
    );
    expect(team.status).toBe(201);
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', team: 'Quiet Team', threshold: 0.000001, notify: ['quiet@company.com'] }]);
    expect((await chat(setup)).status).toBe(200);
    await evaluateNow(setup);
    expect(await events(setup.gateway, setup.adminKey, `?alert_id=${String(alert?.id)}`)).toEqual([]);
  });
});

describe('delivery', () => {
  test('a failing target is retried until it answers, and one that never does is recorded as failed', async () => {
    setup.receiver.failures.set('/flaky', [503, 500]);
    const [alert] = await createAlerts(setup, [
      { type: 'byok_cost_threshold', threshold: 0.000001, notify: ['https://receiver.test/flaky', 'https://receiver.test/down/always', 'nobody@fail.example'] },
    ]);
    expect((await chat(setup)).status).toBe(200);
    const event = await settledEvent(setup, String(alert?.id));
    expect(event.status).toBe('partial');
    const [flaky, down, mail] = event.deliveries;
    expect(flaky).toMatchObject({ channel: 'alert-webhook', ok: true, attempts: 3 });
    expect(down).toMatchObject({ channel: 'alert-webhook', ok: false, attempts: DELIVERY_ATTEMPTS, error: 'the webhook answered HTTP 503' });
    expect(mail).toMatchObject({ channel: 'alert-email', ok: false, attempts: DELIVERY_ATTEMPTS });
    expect(mail?.error).toContain('550');
    // Every retry of one delivery carries the same X-Keyway-Delivery id.
    expect(setup.receiver.received.filter((entry) => entry.path === '/flaky')).toHaveLength(1);
  });
});

describe('approval_pending', () => {
  test("a held request notifies the team's admins and the account's approval_pending alerts, once", async () => {
    const team = await call(
      setup.gateway,
      'POST',
      '/v1/teams',
      {
        name: 'Big Spenders',
        byok_permissions: { providers: { openai: { enabled: true, require_approval_above: 0.000001 } } },
        members: [
          { email: 'dev@company.com', role: 'developer', byok_access: true },
          { email: 'lead@company.com', role: 'admin', byok_access: true },
        ],
      },
      { key: setup.adminKey },
    );
    const body = (await team.json()) as { members: Array<{ role: string; api_key: string }> };
    const member = body.members.find((entry) => entry.role === 'developer')?.api_key ?? '';
    await createAlerts(setup, [{ type: 'approval_pending', notify: ['https://receiver.test/approvals'] }]);
    const refused = await expectSpecError(await chat(setup, member), 403, 'approval_required');
    const approvalId = String(refused.error.approval_id);
    const event = await eventually('the approval_pending event', async () => {
      const found = (await events(setup.gateway, setup.adminKey, '?type=approval_pending')).find((entry) => entry.subject === approvalId);
      return found !== undefined && found.status !== 'delivering' ? found : undefined;
    });
    expect(event.status).toBe('delivered');
    expect(event.deliveries.map((delivery) => delivery.channel).sort()).toEqual(['alert-email', 'alert-webhook']);
    expect(setup.smtp.received.some((mail) => mail.to.includes('lead@company.com') && mail.text.includes(approvalId))).toBe(true);
    expect(setup.receiver.received.some((entry) => entry.path === '/approvals' && entry.body.includes(approvalId))).toBe(true);
  });
});

describe('error_rate and provider_down', () => {
  test('failing upstream calls fire both, from the request counts and the health monitor', async () => {
    // An account of its own, so that only these failing calls are in its window and its health.
    const created = await call(setup.gateway, 'POST', '/v1/accounts', { name: 'Failing Co' });
    const key = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
    await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], key);
    const policy = await call(setup.gateway, 'POST', '/v1/providers/health-check', { auto_disable: true, min_samples: 3, health_threshold: 90 }, { key });
    expect(policy.status).toBe(200);
    const [rate, down] = await createAlerts(
      setup,
      [
        { type: 'error_rate', provider: 'openai', threshold: 50, window_minutes: 5, min_requests: 3, notify: ['https://receiver.test/errors'] },
        { type: 'provider_down', provider: 'openai', notify: ['https://receiver.test/provider-alerts'] },
      ],
      key,
    );
    setup.openai.setSticky({ kind: 'server_error' });
    try {
      for (let count = 0; count < 4; count++) expect((await chat(setup, key)).status).toBeGreaterThanOrEqual(500);
      const settled = (alertId: string) =>
        eventually(`a settled event of ${alertId}`, async () => {
          const found = (await events(setup.gateway, key, `?alert_id=${alertId}`))[0];
          return found !== undefined && found.status !== 'delivering' ? found : undefined;
        });
      const rateEvent = await settled(String(rate?.id));
      expect(rateEvent).toMatchObject({ type: 'error_rate', subject: 'openai', status: 'delivered' });
      expect(rateEvent.details.error_rate_percent).toBe(100);
      const downEvent = await settled(String(down?.id));
      expect(downEvent).toMatchObject({ type: 'provider_down', subject: 'openai', status: 'delivered' });
      expect(downEvent.details.status).toBe('disabled');
      expect(setup.receiver.received.some((entry) => entry.path === '/provider-alerts' && entry.headers['x-keyway-event'] === 'alert.provider_down')).toBe(
        true,
      );
      // The default account saw none of it.
      expect((await events(setup.gateway, setup.adminKey, '?type=provider_down')).length).toBe(0);
    } finally {
      setup.openai.setSticky(undefined);
    }
  });
});

describe('secrets', () => {
  test('no provider key, gateway key, SMTP password or Slack token in events, answers, deliveries or logs', async () => {
    await evaluateNow(setup);
    const history = JSON.stringify(await events(setup.gateway, setup.adminKey, '?limit=1000'));
    const alerts = JSON.stringify(await (await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: setup.adminKey })).json());
    const delivered = JSON.stringify(setup.receiver.received) + JSON.stringify(setup.smtp.received);
    // Log lines only: the first-start announcement prints the admin key once, by design.
    const logs = setup.gateway.output.filter((line) => line.startsWith('{')).join('\n');
    expect(history).toContain('byok_cost_threshold');
    for (const canary of [OPENAI_CANARY_KEY, setup.adminKey, OPERATOR_KEY, webhookSecret]) {
      for (const text of [history, alerts, delivered, logs]) expect(text).not.toContain(canary);
    }
    for (const text of [history, alerts, logs]) {
      expect(text).not.toContain(SMTP_PASSWORD);
      expect(text).not.toContain('SlackCanaryToken0001');
    }
  });
});
