// GET and PATCH /v1/alerts/{id} (QA17: both answered 405, and delete + re-create paged everyone again in
// the same period, the once-per-period record being keyed by the alert's id). A PATCH merges the fields
// a create takes, checked the same way, keeps the id and so the firing record, cannot change what the
// alert watches (type, provider, team), and is audited with the rule before and after. Also: Slack
// targets must be incoming-webhook URLs, and masked targets stay distinguishable.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, expectSpecError } from '../helpers/gateway.ts';
import { readAllEvents } from '../audit/helpers.ts';
import { targetsBinding } from '../../plugins/alerts/targets.ts';
import { chat, createAlerts, evaluateNow, events, OPENAI_CANARY_KEY, settledEvent, startAlertsGateway, type AlertsGateway } from './fixture.ts';

let setup: AlertsGateway;
beforeAll(async () => {
  setup = await startAlertsGateway();
});
afterAll(async () => {
  await setup.stop();
});

const patch = (id: string, body: unknown, key = setup.adminKey) => call(setup.gateway, 'PATCH', `/v1/alerts/${id}`, body, { key });
const read = (id: string, key = setup.adminKey) => call(setup.gateway, 'GET', `/v1/alerts/${id}`, undefined, { key });

async function accountKey(name: string): Promise<string> {
  const created = await call(setup.gateway, 'POST', '/v1/accounts', { name });
  return ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
}

describe('GET /v1/alerts/{id}', () => {
  test("answers the alert as the list shows it; 404 for another account's; the events list still answers", async () => {
    const [alert] = await createAlerts(setup, [{ type: 'error_rate', threshold: 25, notify: ['oncall@company.com'] }]);
    const response = await read(String(alert?.id));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(alert as Record<string, unknown>);
    await expectSpecError(await read(String(alert?.id), await accountKey('Other Read Co')), 404, 'not_found');
    await expectSpecError(await read('alrt_missing'), 404, 'not_found');
    expect((await call(setup.gateway, 'GET', '/v1/alerts/events', undefined, { key: setup.adminKey })).status).toBe(200);
  });
});

describe('PATCH /v1/alerts/{id}', () => {
  test('changes the threshold and targets, keeps the id, and is audited before and after', async () => {
    const [alert] = await createAlerts(setup, [
      { type: 'byok_cost_threshold', provider: 'openai', threshold: 500, name: 'Spend', notify: ['finance@company.com'] },
    ]);
    const id = String(alert?.id);
    const response = await patch(id, { threshold: 750, notify: ['finance@company.com', 'cfo@company.com'], name: null });
    expect(response.status).toBe(200);
    const changed = (await response.json()) as Record<string, unknown>;
    expect(changed).toMatchObject({ id, type: 'byok_cost_threshold', provider: 'openai', threshold: 750, period: 'daily' });
    expect(changed.notify).toEqual(['finance@company.com', 'cfo@company.com']);
    expect(changed.name).toBeUndefined();
    expect(changed.created_at).toBe(alert?.created_at);
    expect(String(changed.updated_at)).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(await (await read(id)).json()).toEqual(changed);
    const audit = (await readAllEvents(setup.gateway, 'type=admin&period=today', setup.adminKey)).find(
      (event) => event.action === 'PATCH /v1/alerts/:id' && event.status === 200,
    );
    expect(audit?.target).toEqual({ id });
    expect(audit?.before).toMatchObject({ id, threshold: 500, name: 'Spend', notify: ['finance@company.com'] });
    expect(audit?.after).toMatchObject({ id, threshold: 750, notify: ['finance@company.com', 'cfo@company.com'] });
  });

  test('the firing record holds: a new threshold and new targets do not page again in a period that fired', async () => {
    const [alert] = await createAlerts(setup, [
      { type: 'byok_cost_threshold', threshold: 0.000001, period: 'monthly', notify: ['https://receiver.test/patched-before'] },
    ]);
    const id = String(alert?.id);
    expect((await chat(setup)).status).toBe(200);
    const fired = await settledEvent(setup, id);
    expect((await patch(id, { threshold: 0.000002, notify: ['https://receiver.test/patched-after'] })).status).toBe(200);
    expect((await chat(setup)).status).toBe(200);
    await evaluateNow(setup);
    expect((await events(setup.gateway, setup.adminKey, `?alert_id=${id}`)).map((event) => event.id)).toEqual([fired.id]);
    expect(setup.receiver.received.filter((entry) => entry.path === '/patched-after')).toHaveLength(0);
  });

  test('a threshold lowered below the spend already booked fires at once, without waiting for the job', async () => {
    const key = await accountKey('Lowered Co');
    await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], key);
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold: 1000, notify: ['https://receiver.test/lowered'] }], key);
    const id = String(alert?.id);
    expect((await chat(setup, key)).status).toBe(200);
    await setup.gateway.runtime.usage.flush();
    expect((await patch(id, { threshold: 0.000001 }, key)).status).toBe(200);
    // Claimed before the PATCH answered.
    const [event] = await events(setup.gateway, key, `?alert_id=${id}`);
    expect(event).toMatchObject({ type: 'byok_cost_threshold', period: new Date().toISOString().slice(0, 10) });
    expect(event?.message).toContain('above the alert threshold of $0.000001.');
  });

  test('type, provider and team cannot change (400 naming the field); the same values sent back are accepted', async () => {
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', provider: 'openai', threshold: 10, notify: ['ops@company.com'] }]);
    const id = String(alert?.id);
    for (const [field, value] of [
      ['type', 'error_rate'],
      ['provider', 'anthropic'],
      ['provider', null],
      ['team', 'Some Team'],
    ] as const) {
      const refused = await expectSpecError(await patch(id, { [field]: value }), 400, 'invalid_field');
      expect({ field, param: refused.error.param }).toEqual({ field, param: field });
      expect(refused.error.message).toContain('cannot be changed');
    }
    // A GET's answer, edited and sent back whole: masked targets and all.
    const whole = (await (await read(id)).json()) as Record<string, unknown>;
    const { id: _id, object: _object, channels: _channels, created_at: _created, ...fields } = whole;
    const response = await patch(id, { ...fields, threshold: 20 });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ type: 'byok_cost_threshold', provider: 'openai', threshold: 20, notify: ['ops@company.com'] });
  });

  test('the create’s checks, each naming the field; masked targets sent back stand for the stored ones', async () => {
    const slack = 'https://hooks.slack.com/services/T0PATCH01/B0PATCH02/PatchSlackSecretToken01';
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold: 10, notify: [slack, 'ops@company.com'] }]);
    const id = String(alert?.id);
    expect((await expectSpecError(await patch(id, { period: 'hourly' }), 400, 'invalid_field')).error.param).toBe('period');
    expect((await expectSpecError(await patch(id, { treshold: 5 }), 400, 'invalid_field')).error.param).toBe('treshold');
    expect((await expectSpecError(await patch(id, { threshold: null }), 400, 'missing_field')).error.param).toBe('threshold');
    expect((await expectSpecError(await patch(id, { notify: ['http://plain.example/hook'] }), 400, 'invalid_field')).error.param).toBe('notify[0]');
    expect((await expectSpecError(await patch(id, { notify: ['https://hooks.slack.com/ser…/…'] }), 400, 'invalid_field')).error.param).toBe('notify[0]');
    expect((await expectSpecError(await patch(id, []), 400, 'invalid_request')).error.message).toContain('JSON object');
    // Nothing of those changed the rule.
    const unchanged = (await (await read(id)).json()) as { threshold: number; notify: string[]; updated_at?: string };
    expect(unchanged.threshold).toBe(10);
    expect(unchanged.updated_at).toBeUndefined();
    const kept = await patch(id, { notify: unchanged.notify, threshold: 12 });
    expect(kept.status).toBe(200);
    // Stored sealed (targets.ts): opened here as the rules' load opens it.
    const [stored] = await setup.gateway.runtime.store.query('SELECT account_id, notify_ciphertext, notify_backend FROM alerts WHERE id = ?', [id]);
    const sealed = { ciphertext: String(stored?.notify_ciphertext), backend: String(stored?.notify_backend) };
    expect(JSON.parse(await setup.gateway.runtime.services.secrets.open(sealed, targetsBinding(String(stored?.account_id), id)))).toEqual([
      slack,
      'ops@company.com',
    ]);
  });

  test("another account's alert is 404; a developer key is refused; without a key 401", async () => {
    const [alert] = await createAlerts(setup, [{ type: 'provider_down', notify: ['ops@company.com'] }]);
    const id = String(alert?.id);
    await expectSpecError(await patch(id, { name: 'x' }, await accountKey('Other Patch Co')), 404, 'not_found');
    await expectSpecError(await patch('alrt_missing', { name: 'x' }), 404, 'not_found');
    const developer = await call(setup.gateway, 'POST', '/v1/keys', { name: 'dev', role: 'developer' }, { key: setup.adminKey });
    const developerKey = String(((await developer.json()) as { api_key: string }).api_key);
    expect((await patch(id, { name: 'x' }, developerKey)).status).toBe(403);
    expect((await call(setup.gateway, 'PATCH', `/v1/alerts/${id}`, { name: 'x' }, { key: '' })).status).toBe(401);
  });
});

describe('targets', () => {
  test('a Slack target must be an incoming-webhook URL (400 naming it)', async () => {
    for (const target of [
      'https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB',
      'https://hooks.slack.com/workspace/T0AAAAAAA/B0BBBBBBB/Secret',
      'https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/Secret?channel=x',
      'https://hooks.slack.com/',
    ]) {
      const response = await call(
        setup.gateway,
        'POST',
        '/v1/alerts',
        { alerts: [{ type: 'provider_down', notify: ['ops@company.com', target] }] },
        { key: setup.adminKey },
      );
      const refused = await expectSpecError(response, 400, 'invalid_field');
      expect({ target, param: refused.error.param }).toEqual({ target, param: 'alerts[0].notify[1]' });
      expect(refused.error.message).toContain('https://hooks.slack.com/services/T…/B…/…');
    }
    await createAlerts(setup, [{ type: 'provider_down', notify: ['https://hooks.slack-gov.com/services/T0GOV/B0GOV/GovSecret0001'] }]);
  });

  test('two webhooks that differ only in their secret part read apart, in the rule and in its deliveries', async () => {
    const first = 'https://hooks.slack.com/services/T0SAME001/B0SAME002/SameWorkspaceSecretA';
    const second = 'https://hooks.slack.com/services/T0SAME001/B0SAME002/SameWorkspaceSecretB';
    const key = await accountKey('Two Hooks Co');
    await addProviderKeys(setup.gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], key);
    const [alert] = await createAlerts(setup, [{ type: 'byok_cost_threshold', threshold: 0.000001, notify: [first, second] }], key);
    const shown = alert?.notify as string[];
    expect(shown[0]).not.toBe(shown[1]);
    for (const target of shown) {
      expect(target).toMatch(/^https:\/\/hooks\.slack\.com\/ser…\/T0S…\/B0S…\/Sam… \[[0-9a-f]{8}\]$/);
      expect(target).not.toContain('SecretA');
      expect(target).not.toContain('SecretB');
    }
    expect((await chat(setup, key)).status).toBe(200);
    const event = await settledEvent({ ...setup, adminKey: key }, String(alert?.id));
    expect(event.deliveries.map((delivery) => delivery.target)).toEqual(shown);
  });
});
