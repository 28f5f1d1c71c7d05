// Every management read that takes query parameters refuses one it does not know, as bodies refuse
// unknown fields: `groupby=team` used to answer 200 without the team breakdown (QA12 cost D4). The
// parameters each one does take still work, all at once. A parameter given twice is refused too
// (`type=admin&type=request` used to answer admin events only, `limit=1&limit=500` one event), except
// `group_by`, a list that may be repeated.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, logLevel: 'info' });
});

afterAll(async () => {
  await gateway.stop();
});

interface Endpoint {
  path: string;
  /** Every parameter it takes, with a value it accepts (one of `period` or `start`/`end`). */
  known: Record<string, string>;
  operator?: boolean;
}

const ENDPOINTS: Endpoint[] = [
  { path: '/v1/analytics/byok', known: { period: 'today', group_by: 'provider,team', account_id: 'default' } },
  { path: '/v1/analytics/cost-comparison', known: { start: '2026-01-01', end: '2026-02-01', account_id: 'default' } },
  { path: '/v1/usage/me', known: { period: 'current_month' } },
  { path: '/v1/audit-logs', known: { type: 'admin', period: 'today', account_id: 'default', limit: '5', cursor: '' }, operator: true },
  { path: '/v1/alerts/events', known: { type: 'compliance', alert_id: 'alrt_x', period: 'last_30_days', limit: '10' } },
  { path: '/v1/approvals', known: { status: 'pending' } },
  { path: '/v1/platform/prices', known: { provider: 'openai', model: 'gpt-4o', source: 'shipped' }, operator: true },
  { path: '/v1/analytics/reconciliation', known: { period: 'today', provider: 'openai' } },
  { path: '/v1/reconciliation/runs', known: { period: 'last_30_days' } },
];

const keyFor = (endpoint: Endpoint) => (endpoint.operator === true ? OPERATOR_KEY : gateway.defaultAdminKey);

describe('unknown query parameters', () => {
  for (const endpoint of ENDPOINTS) {
    test(`${endpoint.path} takes ${Object.keys(endpoint.known).join(', ')} and refuses anything else, naming it`, async () => {
      const known = new URLSearchParams(endpoint.known);
      const accepted = await call(gateway, 'GET', `${endpoint.path}?${known}`, undefined, { key: keyFor(endpoint) });
      expect({ path: endpoint.path, status: accepted.status }).toEqual({ path: endpoint.path, status: 200 });

      const typo = await call(gateway, 'GET', `${endpoint.path}?${known}&groupby=team`, undefined, { key: keyFor(endpoint) });
      const body = await expectSpecError(typo, 400, 'invalid_field');
      expect(body.error.param).toBe('groupby');
      expect(body.error.message).toContain("Invalid value for 'groupby': is not a query parameter of this endpoint; it takes: ");
      for (const name of Object.keys(endpoint.known)) expect(body.error.message).toContain(name);
    });
  }

  for (const endpoint of ENDPOINTS) {
    test(`${endpoint.path} refuses each parameter it takes one value for when given twice, naming it`, async () => {
      const known = new URLSearchParams(endpoint.known);
      for (const [name, value] of Object.entries(endpoint.known)) {
        if (name === 'group_by') continue;
        const twice = await call(gateway, 'GET', `${endpoint.path}?${known}&${new URLSearchParams({ [name]: value })}`, undefined, { key: keyFor(endpoint) });
        const body = await expectSpecError(twice, 400, 'invalid_request');
        expect({ path: endpoint.path, param: body.error.param }).toEqual({ path: endpoint.path, param: name });
        expect(body.error.message).toBe(`The query parameter '${name}' is given 2 times; this endpoint takes one value for it.`);
      }
    });
  }

  test("the audit log's type and limit given twice: 400, not the first value alone", async () => {
    for (const query of ['type=admin&type=request', 'limit=1&limit=500']) {
      const response = await call(gateway, 'GET', `/v1/audit-logs?${query}`);
      expect((await expectSpecError(response, 400, 'invalid_request')).error.param).toBe(query.split('=')[0] as string);
    }
  });

  test('group_by may be repeated: its values are joined, as a comma-separated list is', async () => {
    const admin = { key: gateway.defaultAdminKey };
    const repeated = await call(gateway, 'GET', '/v1/analytics/byok?period=today&group_by=model&group_by=team,day', undefined, admin);
    expect(repeated.status).toBe(200);
    expect(await repeated.json()).toMatchObject({ group_by: ['provider', 'model', 'team', 'day'], by_model: [], by_team: [], by_day: expect.any(Array) });
    // Another parameter of the same endpoint repeated is still refused.
    const twice = await call(gateway, 'GET', '/v1/analytics/byok?period=today&period=current_month&group_by=model&group_by=team', undefined, admin);
    expect((await expectSpecError(twice, 400, 'invalid_request')).error.param).toBe('period');
  });

  test("the seed's analytics query still works as printed, and a typo of group_by is no longer an ungrouped 200", async () => {
    const admin = { key: gateway.defaultAdminKey };
    const seed = await call(gateway, 'GET', '/v1/analytics/byok?period=current_month&group_by=provider,model,team', undefined, admin);
    expect(seed.status).toBe(200);
    expect(await seed.json()).toMatchObject({ by_provider: [], by_model: [], by_team: [] });
    const comparison = await call(gateway, 'GET', '/v1/analytics/cost-comparison?period=last_30_days', undefined, admin);
    expect(comparison.status).toBe(200);
    const grouped = await call(gateway, 'GET', '/v1/analytics/cost-comparison?period=last_30_days&group_by=provider', undefined, admin);
    expect((await expectSpecError(grouped, 400, 'invalid_field')).error.param).toBe('group_by');
  });

  // Reads that take no parameter at all refuse any (the core does it for every management GET that
  // declares none): `GET /v1/teams?limit=-5` used to answer the whole list as if unasked.
  const PARAMETERLESS: Array<{ path: string; operator?: boolean }> = [
    { path: '/v1/teams' },
    { path: '/v1/alerts' },
    { path: '/v1/providers' },
    { path: '/v1/keys' },
    { path: '/v1/settings' },
    { path: '/v1/settings/compliance' },
    { path: '/v1/model-classes' },
    { path: '/v1/providers/health' },
    { path: '/v1/providers/keys/rotations' },
    { path: '/v1/providers/keys/rotation-schedule' },
    { path: '/v1/providers/keys/rotation-policy' },
    { path: '/v1/reconciliation/admin-keys' },
    { path: '/v1/reconciliation/settings' },
    { path: '/v1/accounts', operator: true },
    { path: '/v1/plugins', operator: true },
    { path: '/v1/platform/keys', operator: true },
    { path: '/v1/platform/keys/rotations', operator: true },
    { path: '/v1/platform/connections', operator: true },
    { path: '/v1/admin/master-key/status', operator: true },
  ];
  for (const endpoint of PARAMETERLESS) {
    test(`${endpoint.path} takes no parameter and refuses one, naming it`, async () => {
      const key = endpoint.operator === true ? OPERATOR_KEY : gateway.defaultAdminKey;
      const plain = await call(gateway, 'GET', endpoint.path, undefined, { key });
      expect({ path: endpoint.path, status: plain.status }).toEqual({ path: endpoint.path, status: 200 });
      const body = await expectSpecError(await call(gateway, 'GET', `${endpoint.path}?limit=-5`, undefined, { key }), 400, 'invalid_field');
      expect(body.error.param).toBe('limit');
      expect(body.error.message).toContain('is not a query parameter of this endpoint; it takes none');
    });
  }

  test('an unknown parameter sent without a valid key is still 401 first', async () => {
    await expectSpecError(await call(gateway, 'GET', '/v1/teams?limit=-5', undefined, { key: '' }), 401, 'invalid_api_key');
  });

  test('a parameter named like a key is not echoed', async () => {
    const key = 'sk-proj-QUERYxCANARYxKEY0123456789abcdefghij';
    const response = await call(gateway, 'GET', `/v1/usage/me?${key}=1`, undefined, { key: gateway.defaultAdminKey });
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(text).not.toContain(key);
  });
});
