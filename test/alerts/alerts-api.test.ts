// POST/GET/DELETE /v1/alerts and GET /v1/alerts/events over HTTP: the seed's body exactly as printed,
// every type, the answers (webhook URLs masked), bad bodies (400 naming the field), roles and account
// isolation.

import { webhookSenderFor } from '../../plugins/webhooks/index.ts';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { raiseAlert } from '../../plugins/alerts/raise.ts';
import { call, expectSpecError, startTestGateway } from '../helpers/gateway.ts';
import { createAlerts, startAlertsGateway, type AlertsGateway } from './fixture.ts';

let setup: AlertsGateway;
beforeAll(async () => {
  setup = await startAlertsGateway();
});
afterAll(async () => {
  await setup.stop();
});

const post = (body: unknown, key = setup.adminKey) => call(setup.gateway, 'POST', '/v1/alerts', body, { key });

describe('POST /v1/alerts', () => {
  test("the seed's body, exactly as printed, creates both alerts", async () => {
    const response = await post({
      alerts: [
        { type: 'byok_cost_threshold', provider: 'openai', threshold: 100.0, period: 'daily', notify: ['alerts@company.com'] },
        { type: 'byok_usage_anomaly', sensitivity: 'high', notify: ['security@company.com'] },
      ],
    });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { alerts: Array<Record<string, unknown>>; warnings?: string[] };
    expect(body.warnings).toBeUndefined();
    expect(body.alerts).toHaveLength(2);
    expect(body.alerts[0]).toMatchObject({
      type: 'byok_cost_threshold',
      provider: 'openai',
      threshold: 100,
      period: 'daily',
      notify: ['alerts@company.com'],
      channels: ['alert-email'],
    });
    expect(body.alerts[1]).toMatchObject({ type: 'byok_usage_anomaly', sensitivity: 'high', metrics: ['spend', 'requests', 'error_rate'] });
    expect(String(body.alerts[0]?.id)).toMatch(/^alrt_/);
  });

  test('a webhook at the metadata service, a private network or this machine is refused, and never called', async () => {
    for (const [index, target] of [
      'https://169.254.169.254/latest/meta-data/',
      'https://10.0.0.1/hook',
      'https://127.0.0.1:8443/v1/models',
      'https://[::1]/hook',
      'https://localhost/hook',
    ].entries()) {
      const response = await call(
        setup.gateway,
        'POST',
        '/v1/alerts',
        { alerts: [{ type: 'byok_cost_threshold', threshold: 1, notify: ['ops@company.com', target] }] },
        {
          key: setup.adminKey,
        },
      );
      const error = ((await response.json()) as { error: { code: string; param: string } }).error;
      expect({ index, status: response.status, code: error.code, param: error.param }).toEqual({
        index,
        status: 400,
        code: 'invalid_field',
        param: 'alerts[0].notify[1]',
      });
    }
    // At delivery too (a target saved before the rule existed, or sent by another plugin): refused, no request made.
    const sender = webhookSenderFor(setup.gateway.runtime.services);
    const before = setup.receiver.received.length;
    await expect(sender.send({ accountId: 'default', url: 'https://169.254.169.254/hook', event: 'alert.test', body: '{}' })).rejects.toThrow('refused');
    expect(setup.receiver.received.length).toBe(before);
  });

  test('every type is accepted, with defaults filled in; Slack URLs go to alert-slack and are masked in answers', async () => {
    const slack = 'https://hooks.slack.com/services/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';
    const created = await createAlerts(setup, [
      { type: 'byok_cost_threshold', threshold: 5, notify: ['https://receiver.test/hook?token=abc123456'] },
      { type: 'error_rate', threshold: 10, notify: [slack] },
      { type: 'provider_down', provider: 'anthropic', notify: ['ops@company.com'] },
      { type: 'rotation_due', notify: ['ops@company.com'] },
      { type: 'approval_pending', notify: ['ops@company.com'] },
    ]);
    expect(created[0]).toMatchObject({ period: 'daily', channels: ['alert-webhook'] });
    expect(created[1]).toMatchObject({ window_minutes: 15, min_requests: 20, channels: ['alert-slack'] });
    const listed = JSON.stringify(await (await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: setup.adminKey })).json());
    expect(listed).not.toContain('SecretSlackTokenValue123');
    expect(listed).not.toContain('abc123456');
    expect(listed).toContain('https://hooks.slack.com/');
  });

  const bad: Array<[string, unknown, string]> = [
    ['an unknown type', { alerts: [{ type: 'budget_blowout', notify: ['a@b.co'] }] }, 'alerts[0].type'],
    ['a bad period', { alerts: [{ type: 'byok_cost_threshold', threshold: 1, period: 'hourly', notify: ['a@b.co'] }] }, 'alerts[0].period'],
    ['a negative threshold', { alerts: [{ type: 'byok_cost_threshold', threshold: -5, notify: ['a@b.co'] }] }, 'alerts[0].threshold'],
    ['a threshold that is text', { alerts: [{ type: 'byok_cost_threshold', threshold: 'lots', notify: ['a@b.co'] }] }, 'alerts[0].threshold'],
    ['an error rate above 100 %', { alerts: [{ type: 'error_rate', threshold: 150, notify: ['a@b.co'] }] }, 'alerts[0].threshold'],
    ['a bad sensitivity', { alerts: [{ type: 'byok_usage_anomaly', sensitivity: 'extreme', notify: ['a@b.co'] }] }, 'alerts[0].sensitivity'],
    ['a target that is no address', { alerts: [{ type: 'provider_down', notify: ['not-an-address'] }] }, 'alerts[0].notify[0]'],
    ['a plain http webhook', { alerts: [{ type: 'provider_down', notify: ['ok@company.com', 'http://hooks.example.com/x'] }] }, 'alerts[0].notify[1]'],
    ['a misspelt field', { alerts: [{ type: 'byok_cost_threshold', treshold: 5, threshold: 5, notify: ['a@b.co'] }] }, 'alerts[0].treshold'],
    ['an unknown team', { alerts: [{ type: 'byok_cost_threshold', threshold: 5, team: 'nobody', notify: ['a@b.co'] }] }, 'alerts[0].team'],
    ['an empty list', { alerts: [] }, 'alerts'],
  ];
  for (const [what, body, param] of bad) {
    test(`400 for ${what}, naming ${param}`, async () => {
      const error = await expectSpecError(await post(body), 400, 'invalid_field');
      expect(error.error.param).toBe(param);
    });
  }

  test('an unknown provider is a 400 naming alerts[i].provider and listing the loaded providers', async () => {
    const cases: Array<[unknown, string]> = [
      // Pattern-valid names that match no loaded provider, or a catalog alias: the alert would never fire.
      [{ alerts: [{ type: 'byok_cost_threshold', provider: 'openaii', threshold: 5, notify: ['a@b.co'] }] }, 'alerts[0].provider'],
      [
        {
          alerts: [
            { type: 'provider_down', notify: ['a@b.co'] },
            { type: 'provider_down', provider: 'gemini', notify: ['a@b.co'] },
          ],
        },
        'alerts[1].provider',
      ],
      // A name the schema's pattern refuses gets the same list, not the pattern's description.
      [{ alerts: [{ type: 'error_rate', provider: 'OpenAI', threshold: 5, notify: ['a@b.co'] }] }, 'alerts[0].provider'],
    ];
    for (const [body, param] of cases) {
      const error = await expectSpecError(await post(body), 400, 'invalid_field');
      expect(error.error.param).toBe(param);
      expect(error.error.message).toContain('unknown provider');
      for (const provider of ['openai', 'anthropic', 'google', 'cohere', 'perplexity']) expect(error.error.message).toContain(provider);
    }
    const notText = await expectSpecError(await post({ alerts: [{ type: 'provider_down', provider: 42, notify: ['a@b.co'] }] }), 400, 'invalid_field');
    expect(notText.error.param).toBe('alerts[0].provider');
    // A type that takes no provider still refuses the field as unknown, not as a bad provider.
    const noProvider = await expectSpecError(
      await post({ alerts: [{ type: 'approval_pending', provider: 'openai', notify: ['a@b.co'] }] }),
      400,
      'invalid_field',
    );
    expect(noProvider.error.param).toBe('alerts[0].provider');
    expect(noProvider.error.message).not.toContain('unknown provider');
    const loaded = await post({ alerts: [{ type: 'provider_down', provider: 'google', notify: ['a@b.co'] }] });
    expect(loaded.status).toBe(201);
  });

  test('a field beside alerts in the envelope is refused, naming it, and no alert is made (it was taken with a 201)', async () => {
    const before = ((await (await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: setup.adminKey })).json()) as { alerts: unknown[] }).alerts.length;
    const refused = await expectSpecError(
      await post({ alerts: [{ type: 'error_rate', threshold: 50, notify: ['ops@company.com'] }], replace_existing: true }),
      400,
      'invalid_field',
    );
    expect(refused.error.param).toBe('replace_existing');
    expect(refused.error.message).toContain('unknown field; known fields: alerts');
    const after = ((await (await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: setup.adminKey })).json()) as { alerts: unknown[] }).alerts.length;
    expect(after).toBe(before);
  });

  test('400 for a missing notify and for JSON that does not parse', async () => {
    const missing = await expectSpecError(await post({ alerts: [{ type: 'provider_down' }] }), 400, 'missing_field');
    expect(missing.error.param).toBe('alerts[0].notify');
    const response = await call(setup.gateway, 'POST', '/v1/alerts', '{"alerts": [', { key: setup.adminKey });
    expect(response.status).toBe(400);
  });
});

describe('a target no channel delivers to yet (e-mail without KEYWAY_SMTP_URL)', () => {
  test('channels lists no null: the target is named in undeliverable[] (create and GET) and in a warning', async () => {
    const gateway = await startTestGateway({ probes: false });
    try {
      const response = await call(
        gateway,
        'POST',
        '/v1/alerts',
        { alerts: [{ type: 'byok_cost_threshold', threshold: 100, notify: ['alerts@company.com', 'https://hooks.company.com/keyway'] }] },
        { key: gateway.defaultAdminKey },
      );
      expect(response.status).toBe(201);
      const body = (await response.json()) as { alerts: Array<Record<string, unknown>>; warnings?: string[] };
      const expected = { channels: ['alert-webhook'], undeliverable: ['alerts@company.com'] };
      expect(body.alerts[0]).toMatchObject(expected);
      expect(body.warnings).toEqual([expect.stringContaining('no alert channel delivers to alerts@company.com yet (set KEYWAY_SMTP_URL for e-mail)')]);
      const listed = (await (await call(gateway, 'GET', '/v1/alerts', undefined, { key: gateway.defaultAdminKey })).json()) as {
        alerts: Array<Record<string, unknown>>;
      };
      expect(listed.alerts[0]).toMatchObject(expected);
    } finally {
      await gateway.stop();
    }
  });
});

describe('GET and DELETE /v1/alerts', () => {
  test('a deleted alert is gone from the list; deleting it again is 404', async () => {
    const [alert] = await createAlerts(setup, [{ type: 'provider_down', notify: ['gone@company.com'] }]);
    const id = String(alert?.id);
    const list = async () =>
      ((await (await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: setup.adminKey })).json()) as { alerts: Array<{ id: string }> }).alerts;
    expect((await list()).some((entry) => entry.id === id)).toBe(true);
    const deleted = await call(setup.gateway, 'DELETE', `/v1/alerts/${id}`, undefined, { key: setup.adminKey });
    expect(deleted.status).toBe(204);
    expect((await list()).some((entry) => entry.id === id)).toBe(false);
    await expectSpecError(await call(setup.gateway, 'DELETE', `/v1/alerts/${id}`, undefined, { key: setup.adminKey }), 404, 'not_found');
  });

  test("another account neither sees nor deletes this account's alerts, nor its events", async () => {
    const [alert] = await createAlerts(setup, [{ type: 'provider_down', notify: ['mine@company.com'] }]);
    const account = (await (await call(setup.gateway, 'POST', '/v1/accounts', { name: 'Other Co' })).json()) as { admin_key: { api_key: string } };
    const other = account.admin_key.api_key;
    const listed = (await (await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: other })).json()) as { alerts: unknown[] };
    expect(listed.alerts).toEqual([]);
    await expectSpecError(await call(setup.gateway, 'DELETE', `/v1/alerts/${String(alert?.id)}`, undefined, { key: other }), 404, 'not_found');
    const history = (await (await call(setup.gateway, 'GET', '/v1/alerts/events', undefined, { key: other })).json()) as { events: unknown[] };
    expect(history.events).toEqual([]);
  });

  test('the events list checks its query', async () => {
    await expectSpecError(await call(setup.gateway, 'GET', '/v1/alerts/events?type=Not-A-Type', undefined, { key: setup.adminKey }), 400, 'invalid_field');
    await expectSpecError(await call(setup.gateway, 'GET', '/v1/alerts/events?period=yesterday', undefined, { key: setup.adminKey }), 400, 'invalid_field');
    await expectSpecError(await call(setup.gateway, 'GET', '/v1/alerts/events?limit=0', undefined, { key: setup.adminKey }), 400, 'invalid_field');
    const today = await call(setup.gateway, 'GET', '/v1/alerts/events?period=today&limit=5', undefined, { key: setup.adminKey });
    expect(today.status).toBe(200);
  });

  test('an unknown event type is a 400 naming the types; a type a plugin raised in the account is a filter', async () => {
    const bogus = await expectSpecError(
      await call(setup.gateway, 'GET', '/v1/alerts/events?type=bogus', undefined, { key: setup.adminKey }),
      400,
      'invalid_field',
    );
    expect(bogus.error.param).toBe('type');
    expect(bogus.error.message).toContain('byok_cost_threshold, byok_usage_anomaly, error_rate, provider_down');
    const builtIn = await call(setup.gateway, 'GET', '/v1/alerts/events?type=reconciliation_drift', undefined, { key: setup.adminKey });
    expect(builtIn.status).toBe(200);
    // Any plugin may raise a type of its own (plugins/alerts/raise.ts): once raised, it filters.
    await raiseAlert(setup.gateway.runtime.services, { accountId: 'default', type: 'quota_warning', subject: 'quota', message: 'Quota at 90%' });
    const raised = await call(setup.gateway, 'GET', '/v1/alerts/events?type=quota_warning', undefined, { key: setup.adminKey });
    expect(raised.status).toBe(200);
    expect(((await raised.json()) as { events: Array<{ type: string }> }).events.map((event) => event.type)).toEqual(['quota_warning']);
  });

  test('an impossible calendar date is a 400 naming start or end, never a period rolled into the next month', async () => {
    const cases: Array<[string, string]> = [
      ['start=2026-02-30', 'start'],
      ['start=2026-11-01&end=2026-11-31', 'end'],
      ['end=2026-12-01', 'start'],
    ];
    for (const [query, param] of cases) {
      const body = await expectSpecError(
        await call(setup.gateway, 'GET', `/v1/alerts/events?${query}`, undefined, { key: setup.adminKey }),
        400,
        'invalid_field',
      );
      expect({ query, param: body.error.param }).toEqual({ query, param });
    }
  });

  test('a developer key may neither manage alerts nor set the webhook secret', async () => {
    const created = await call(setup.gateway, 'POST', '/v1/keys', { name: 'dev', role: 'developer' }, { key: setup.adminKey });
    const developer = ((await created.json()) as { api_key: string }).api_key;
    await expectSpecError(await post({ alerts: [{ type: 'provider_down', notify: ['a@b.co'] }] }, developer), 403, 'permission_denied');
    await expectSpecError(await call(setup.gateway, 'GET', '/v1/alerts/events', undefined, { key: developer }), 403, 'permission_denied');
    await expectSpecError(await call(setup.gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: developer }), 403, 'permission_denied');
  });

  test('without a key the routes answer 401', async () => {
    await expectSpecError(await call(setup.gateway, 'GET', '/v1/alerts', undefined, { key: '' }), 401, 'invalid_api_key');
    await expectSpecError(await call(setup.gateway, 'GET', '/v1/alerts/events', undefined, { key: '' }), 401, 'invalid_api_key');
  });
});
