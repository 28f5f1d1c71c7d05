// Keys pasted into management free-text fields (a team's name, a member's e-mail, an alert's webhook
// URL) are refused when the body is read: 400 naming the field, never the value, and nothing stored.
// The fields made for keys (a provider key, a reconciliation admin key, a rotation's new key) still
// take them, and a Slack incoming-webhook URL, which carries a token of no key shape, is still a target.
// A key of no known shape repeated in another field of the body that brings it (a Cohere key pasted
// as the key's `settings.default_model` too) is refused the same way: it is not in play yet.
// Also: a client's own X-Provider-Key, whatever its shape, is never taken as the request id or the tag.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

const PROVIDER_CANARY = 'sk-proj-CANARYmgmtKEY0123456789abcdefghijklmnop';
const STORED_KEY = 'sk-proj-STOREDmgmtKEY0123456789abcdefghijklmnopq';
const NEW_KEY = 'sk-proj-ROTATEDmgmtKEY0123456789abcdefghijklmnop';
const ADMIN_KEY = 'sk-admin-RECONmgmtKEY0123456789abcdefghijklmnopq';
// No known shape: only the request's own X-Provider-Key header tells it is a key.
const SHAPELESS_CLIENT_KEY = 'Zq7fK2mR9wXc4vB8nL1pT6yHshapelessCLIENT';
// No known shape, never stored: only the body that carries it as a key tells it is one.
const SHAPELESS_BODY_KEY = 'CANARYPLAIN0123456789abcdefghijk';
const SHAPELESS_ADMIN_KEY = 'CANARYADMINxq7fK2mR9wXc4vB8nL1p';
const SLACK_URL = 'https://hooks.slack.com/services/T0MGMT/B0MGMT/MgmtSlackToken000001';

let simulator: SimulatorHandle;
let gateway: TestGateway;
let teamId: string;
const answers: string[] = [];

async function record(response: Response): Promise<{ status: number; body: Record<string, unknown> & { error?: { param?: string; code?: string } } }> {
  const text = await response.text();
  answers.push(`${[...response.headers.entries()].map(([name, value]) => `${name}: ${value}`).join('\n')}\n${text}`);
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function expectRefused(response: Response, param: string): Promise<void> {
  const { status, body } = await record(response);
  expect({ status, code: body.error?.code, param: body.error?.param }).toEqual({ status: 400, code: 'invalid_field', param });
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [STORED_KEY, NEW_KEY, SHAPELESS_CLIENT_KEY] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: STORED_KEY }], gateway.defaultAdminKey);
  const created = await record(await call(gateway, 'POST', '/v1/teams', { name: 'Platform' }, { key: gateway.defaultAdminKey }));
  expect(created.status).toBe(201);
  teamId = String(created.body.id);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

describe('a key in a management field that does not take keys is refused', () => {
  test('team names, members and permissions, on POST and PATCH', async () => {
    const admin = { key: gateway.defaultAdminKey };
    await expectRefused(await call(gateway, 'POST', '/v1/teams', { name: `t-${gateway.defaultAdminKey}` }, admin), 'name');
    await expectRefused(
      await call(gateway, 'POST', '/v1/teams', { name: 'Ops', members: [{ email: `${PROVIDER_CANARY}@x.com`, role: 'developer' }] }, admin),
      'members[0].email',
    );
    await expectRefused(await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { name: PROVIDER_CANARY }, admin), 'name');
    // A key used as a field name: the object holding it is named.
    await expectRefused(
      await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { byok_permissions: { providers: { [PROVIDER_CANARY]: { enabled: true } } } }, admin),
      'byok_permissions.providers',
    );
    await expectRefused(await call(gateway, 'POST', `/v1/teams/${teamId}/members`, { email: `${PROVIDER_CANARY}@x.com`, role: 'developer' }, admin), 'email');
  });

  test('gateway key and account names, provider key side fields', async () => {
    await expectRefused(await call(gateway, 'POST', '/v1/keys', { name: PROVIDER_CANARY }, { key: gateway.defaultAdminKey }), 'name');
    await expectRefused(await call(gateway, 'POST', '/v1/accounts', { name: `acme ${gateway.defaultAdminKey}` }), 'name');
    await expectRefused(
      await call(
        gateway,
        'POST',
        '/v1/providers/keys',
        { providers: [{ name: 'openai', api_key: STORED_KEY, organization_id: PROVIDER_CANARY }] },
        { key: gateway.defaultAdminKey },
      ),
      'providers[0].organization_id',
    );
  });

  test('rotation e-mail, alert names and webhook URLs with a token', async () => {
    const admin = { key: gateway.defaultAdminKey };
    await expectRefused(
      await call(gateway, 'PUT', '/v1/providers/keys/rotation-policy', { max_key_age_days: 30, notification_email: `${PROVIDER_CANARY}@x.com` }, admin),
      'notification_email',
    );
    const rule = { type: 'byok_cost_threshold', provider: 'openai', threshold: 100, period: 'daily', notify: ['alerts@company.com'] };
    await expectRefused(await call(gateway, 'POST', '/v1/alerts', { alerts: [{ ...rule, name: `spend ${PROVIDER_CANARY}` }] }, admin), 'alerts[0].name');
    await expectRefused(
      await call(gateway, 'POST', '/v1/alerts', { alerts: [{ ...rule, notify: [`https://hooks.example.com/alert?token=${PROVIDER_CANARY}`] }] }, admin),
      'alerts[0].notify[0]',
    );
  });

  test("a body's own key of no known shape, in another field of the same body", async () => {
    const admin = { key: gateway.defaultAdminKey };
    const entry = { name: 'openai', api_key: SHAPELESS_BODY_KEY };
    // Equal to the key, or holding it: a provider key's side fields, account and platform alike.
    await expectRefused(
      await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ ...entry, settings: { default_model: SHAPELESS_BODY_KEY } }] }, admin),
      'providers[0].settings.default_model',
    );
    await expectRefused(
      await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ ...entry, organization_id: `org-${SHAPELESS_BODY_KEY}` }] }, admin),
      'providers[0].organization_id',
    );
    // Another entry's field holds the first entry's key.
    await expectRefused(
      await call(
        gateway,
        'POST',
        '/v1/providers/keys',
        { providers: [entry, { name: 'openai', api_key: STORED_KEY, settings: { default_model: SHAPELESS_BODY_KEY } }] },
        admin,
      ),
      'providers[1].settings.default_model',
    );
    await expectRefused(
      await call(gateway, 'POST', '/v1/platform/keys', { providers: [{ ...entry, settings: { [SHAPELESS_BODY_KEY]: 'x' } }] }),
      'providers[0].settings',
    );
    await expectRefused(
      await call(
        gateway,
        'PUT',
        '/v1/reconciliation/admin-keys',
        { provider: 'openai', admin_key: SHAPELESS_ADMIN_KEY, verify: false, project_ids: [SHAPELESS_ADMIN_KEY] },
        admin,
      ),
      'project_ids[0]',
    );
    await expectRefused(
      await call(
        gateway,
        'POST',
        '/v1/providers/keys/rotate',
        {
          provider: 'openai',
          new_api_key: SHAPELESS_BODY_KEY,
          test_before_switch: false,
          notification_webhooks: [`https://hooks.example.com/k/${SHAPELESS_BODY_KEY}`],
        },
        admin,
      ),
      'notification_webhooks[0]',
    );
    // Nothing of it was stored: the account keeps the one key it had.
    const listed = await record(await call(gateway, 'GET', '/v1/providers', undefined, admin));
    expect(JSON.stringify(listed.body)).not.toContain('CANARY');
  });

  test('a gateway key glued to other text is refused too', async () => {
    await expectRefused(await call(gateway, 'POST', '/v1/teams', { name: `x${OPERATOR_KEY}` }, { key: gateway.defaultAdminKey }), 'name');
  });
});

describe('the fields made for keys still take them', () => {
  test('a provider key, a reconciliation admin key, a rotation, the webhook secret, a Slack alert', async () => {
    const admin = { key: gateway.defaultAdminKey };
    expect((await record(await call(gateway, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: STORED_KEY }] }))).status).toBe(201);
    const reconciliation = await record(
      await call(gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: ADMIN_KEY, verify: false }, admin),
    );
    expect(reconciliation.status).toBe(200);
    const rotation = await record(
      await call(
        gateway,
        'POST',
        '/v1/providers/keys/rotate',
        { provider: 'openai', new_api_key: NEW_KEY, rotation_strategy: 'immediate', test_before_switch: false },
        admin,
      ),
    );
    expect(rotation.status).toBe(201);
    expect((await record(await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, admin))).status).toBe(201);
    const rule = { type: 'byok_cost_threshold', provider: 'openai', threshold: 100, period: 'daily', notify: [SLACK_URL] };
    expect((await record(await call(gateway, 'POST', '/v1/alerts', { alerts: [rule] }, admin))).status).toBe(201);
  });
});

/** A chat call that carries the shapeless client key in X-Provider-Key, plus `headers`. */
const chatWithClientKey = (headers: Record<string, string>): Promise<Response> =>
  call(
    gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] },
    { key: gateway.defaultAdminKey, headers: { 'x-provider-key': SHAPELESS_CLIENT_KEY, ...headers } },
  );

describe("the request's own X-Provider-Key is never its id or its tag", () => {
  test('sent as X-Request-Id: the request gets an id of its own, on the answer and the usage row', async () => {
    const response = await chatWithClientKey({ 'x-request-id': `id-${SHAPELESS_CLIENT_KEY}` });
    const { status } = await record(response);
    expect(status).toBe(200);
    expect(response.headers.get('x-request-id')).not.toContain(SHAPELESS_CLIENT_KEY);
    await flushUsage(gateway);
    const rows = await gateway.runtime.store.query('SELECT request_id FROM usage_records');
    expect(JSON.stringify(rows)).not.toContain(SHAPELESS_CLIENT_KEY);
  });

  test('sent as X-Project-Tag: refused naming the header', async () => {
    const response = await chatWithClientKey({ 'x-project-tag': SHAPELESS_CLIENT_KEY });
    await expectRefused(response, 'x-project-tag');
  });

  test('sent as X-Team-ID: the refusal does not quote it', async () => {
    const member = await record(
      await call(gateway, 'POST', `/v1/teams/${teamId}/members`, { email: 'dev@company.com', role: 'developer' }, { key: gateway.defaultAdminKey }),
    );
    expect(member.status).toBe(201);
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] },
      { key: String(member.body.api_key), headers: { 'x-provider-key': SHAPELESS_CLIENT_KEY, 'x-team-id': SHAPELESS_CLIENT_KEY } },
    );
    expect((await record(response)).status).toBe(403);
  });
});

test('canaries: no answer holds a refused value or a key, and no database file holds one in plaintext', async () => {
  await flushUsage(gateway);
  const answered = answers.join('\n');
  const shapeless = [SHAPELESS_BODY_KEY, SHAPELESS_ADMIN_KEY];
  for (const canary of [PROVIDER_CANARY, STORED_KEY, NEW_KEY, ADMIN_KEY, SHAPELESS_CLIENT_KEY, ...shapeless, gateway.defaultAdminKey, OPERATOR_KEY]) {
    expect(answered).not.toContain(canary);
  }
  const files = readdirSync(gateway.dataDirectory).filter((name) => name.startsWith('keyway.db'));
  const stored = files.map((name) => readFileSync(join(gateway.dataDirectory, name)).toString('latin1')).join('\n');
  for (const canary of [PROVIDER_CANARY, STORED_KEY, NEW_KEY, ADMIN_KEY, SHAPELESS_CLIENT_KEY, ...shapeless, gateway.defaultAdminKey]) {
    expect(stored).not.toContain(canary);
  }
});
