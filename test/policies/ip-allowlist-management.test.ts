// allowed_ips on management calls: a key bound to a network (or a member of a team bound to one) is
// refused on every route with a role, not only at inference. Before this, a restricted admin key could
// mint an unrestricted admin key from anywhere.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let adminKey: string;
const METRICS_TOKEN = 'metrics-scrape-token-0123456789abcdef';

/** The gateway trusts the loopback as a proxy, so X-Forwarded-For says where each call comes from. */
const from = (address: string) => ({ 'x-forwarded-for': address });

async function created(response: Response): Promise<Record<string, unknown>> {
  const body = (await response.json()) as Record<string, unknown>;
  if (response.status !== 201) throw new Error(`expected 201, got ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

async function errorCode(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { error?: { code?: string } };
  return body.error?.code;
}

beforeAll(async () => {
  gateway = await startTestGateway({ env: { KEYWAY_TRUSTED_PROXIES: '127.0.0.1,::1', KEYWAY_METRICS_TOKEN: METRICS_TOKEN }, probes: false });
  adminKey = gateway.defaultAdminKey;
});

afterAll(async () => {
  await gateway.stop();
});

describe('allowed_ips on management calls', () => {
  test("an admin key bound to a network is refused from elsewhere on the core's and the plugins' routes", async () => {
    const bound = String(
      (await created(await call(gateway, 'POST', '/v1/keys', { role: 'admin', allowed_ips: ['203.0.113.0/24'] }, { key: adminKey }))).api_key,
    );
    const keysBefore = await (await call(gateway, 'GET', '/v1/keys', undefined, { key: adminKey })).text();
    for (const [method, path, body] of [
      ['POST', '/v1/keys', { role: 'admin', name: 'minted elsewhere' }],
      ['GET', '/v1/keys', undefined],
      ['GET', '/v1/providers', undefined],
      ['GET', '/v1/teams', undefined],
      ['GET', '/v1/analytics/byok?period=today', undefined],
    ] as const) {
      const response = await call(gateway, method, path, body, { key: bound, headers: from('198.51.100.7') });
      expect({ path, status: response.status, code: await errorCode(response) }).toEqual({ path, status: 403, code: 'ip_not_allowed' });
    }
    expect(await (await call(gateway, 'GET', '/v1/keys', undefined, { key: adminKey })).text()).toBe(keysBefore);
    // The dashboard's sign-in too: from elsewhere it would at least tell that the key is good.
    const signIn = (address: string) =>
      fetch(`${gateway.url}/dashboard/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...from(address) },
        body: JSON.stringify({ key: bound }),
      });
    const outside = await signIn('198.51.100.7');
    expect(outside.status).toBe(403);
    expect(await errorCode(outside)).toBe('ip_not_allowed');
    expect(outside.headers.get('set-cookie')).toBeNull();
    expect((await signIn('203.0.113.9')).status).toBe(201);
    // From inside the network it works as before.
    expect((await call(gateway, 'GET', '/v1/keys', undefined, { key: bound, headers: from('203.0.113.9') })).status).toBe(200);
    expect((await call(gateway, 'GET', '/v1/teams', undefined, { key: bound, headers: from('203.0.113.9') })).status).toBe(200);
  });

  test("a team's allowed_ips bind its members' management calls too (GET /v1/usage/me)", async () => {
    const team = await created(
      await call(
        gateway,
        'POST',
        '/v1/teams',
        { name: 'Office only', allowed_ips: ['192.0.2.0/24'], members: [{ email: 'viewer@office.example', role: 'viewer' }] },
        { key: adminKey },
      ),
    );
    const viewerKey = String((team.members as Array<{ api_key: string }>)[0]?.api_key);
    const outside = await call(gateway, 'GET', '/v1/usage/me', undefined, { key: viewerKey, headers: from('198.51.100.7') });
    expect(outside.status).toBe(403);
    expect(await errorCode(outside)).toBe('ip_not_allowed');
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: viewerKey, headers: from('192.0.2.44') })).status).toBe(200);
  });

  test('the address is judged before the role, the X-Team-ID and the body, on every route (QA15 F4)', async () => {
    const outside = from('198.51.100.7');
    const inside = from('203.0.113.9');
    const keyWith = async (role: string) =>
      String((await created(await call(gateway, 'POST', '/v1/keys', { role, allowed_ips: ['203.0.113.0/24'] }, { key: adminKey }))).api_key);
    const boundAdmin = await keyWith('admin');
    const boundViewer = await keyWith('viewer');
    const boundDeveloper = await keyWith('developer');
    const team = await created(
      await call(
        gateway,
        'POST',
        '/v1/teams',
        { name: 'Bound members', allowed_ips: ['203.0.113.0/24'], members: [{ email: 'm@bound.example', role: 'developer' }] },
        { key: adminKey },
      ),
    );
    const boundMember = String((team.members as Array<{ api_key: string }>)[0]?.api_key);
    const refusedFromOutside: Array<[string, string, string, unknown, Record<string, string>?]> = [
      // GET /metrics checks its caller itself: it answered "needs the operator role; the key has admin".
      ['admin key, GET /metrics', boundAdmin, 'GET /metrics', undefined],
      ['viewer key, GET /metrics', boundViewer, 'GET /metrics', undefined],
      // A core route with an operator role, and an admin route called by a lesser key.
      ['admin key, GET /v1/accounts', boundAdmin, 'GET /v1/accounts', undefined],
      ['viewer key, POST /v1/keys', boundViewer, 'POST /v1/keys', { role: 'viewer' }],
      // Inference: the viewer refusal (byok_access_denied) and a body's 400 came before the address.
      ['viewer key, chat', boundViewer, 'POST /v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }],
      ['developer key, chat with a broken body', boundDeveloper, 'POST /v1/chat/completions', '{"model": '],
      // A member key with another team's X-Team-ID answered "This key belongs to team …".
      [
        'member key, chat, X-Team-ID of another team',
        boundMember,
        'POST /v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [] },
        { 'x-team-id': 'team_other' },
      ],
      ['member key, GET /v1/usage/me, X-Team-ID of another team', boundMember, 'GET /v1/usage/me', undefined, { 'x-team-id': 'team_other' }],
    ];
    for (const [name, key, route, body, headers] of refusedFromOutside) {
      const [method, path] = route.split(' ') as [string, string];
      const response = await call(gateway, method, path, body, { key, headers: { ...outside, ...headers } });
      const text = await response.text();
      expect({ name, status: response.status, code: (JSON.parse(text) as { error?: { code?: string } }).error?.code }).toEqual({
        name,
        status: 403,
        code: 'ip_not_allowed',
      });
      expect(text).not.toContain('role');
      expect(text).not.toContain(String(team.id));
    }
    // From inside, the same calls meet the checks behind the address: the role, the body, the team.
    const expectCode = async (response: Response, status: number, code: string) =>
      expect({ status: response.status, code: ((await response.json()) as { error?: { code?: string } }).error?.code }).toEqual({ status, code });
    await expectCode(await call(gateway, 'GET', '/metrics', undefined, { key: boundAdmin, headers: inside }), 403, 'permission_denied');
    await expectCode(
      await call(
        gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
        { key: boundViewer, headers: inside },
      ),
      403,
      'byok_access_denied',
    );
    await expectCode(await call(gateway, 'POST', '/v1/chat/completions', '{"model": ', { key: boundDeveloper, headers: inside }), 400, 'invalid_json');
    await expectCode(
      await call(gateway, 'GET', '/v1/usage/me', undefined, { key: boundMember, headers: { ...inside, 'x-team-id': 'team_other' } }),
      403,
      'permission_denied',
    );
    // An unknown key is 401 everywhere; the operator key and the scrape token read /metrics from anywhere.
    await expectCode(
      await call(gateway, 'GET', '/metrics', undefined, { key: 'kw_ak_unknownKey0123456789abcdefghijklmnopqr', headers: outside }),
      401,
      'invalid_api_key',
    );
    expect((await call(gateway, 'GET', '/metrics', undefined, { headers: outside })).status).toBe(200);
    expect((await call(gateway, 'GET', '/metrics', undefined, { key: METRICS_TOKEN, headers: outside })).status).toBe(200);
  });

  test("a dashboard session answers nothing about its key from outside the key's network", async () => {
    const bound = String(
      (await created(await call(gateway, 'POST', '/v1/keys', { role: 'admin', allowed_ips: ['203.0.113.0/24'] }, { key: adminKey }))).api_key,
    );
    const signIn = await fetch(`${gateway.url}/dashboard/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...from('203.0.113.9') },
      body: JSON.stringify({ key: bound }),
    });
    expect(signIn.status).toBe(201);
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const session = (address: string) => fetch(`${gateway.url}/dashboard/session`, { headers: { cookie, ...from(address) } });
    const outside = await session('198.51.100.7');
    const text = await outside.text();
    expect(outside.status).toBe(403);
    expect(text).toContain('ip_not_allowed');
    expect(text).not.toContain('"role"');
    // The session is kept: back on the network, the page is signed in again.
    const back = (await (await session('203.0.113.9')).json()) as { signed_in: boolean; role: string };
    expect(back).toMatchObject({ signed_in: true, role: 'admin' });
  });

  test('keys without a list are not restricted', async () => {
    expect((await call(gateway, 'GET', '/v1/keys', undefined, { key: adminKey, headers: from('198.51.100.7') })).status).toBe(200);
  });

  test('an entry that is neither an address nor a range is refused when written, naming it (keys, teams, members, PATCH)', async () => {
    const team = await created(await call(gateway, 'POST', '/v1/teams', { name: 'Ranges', members: [] }, { key: adminKey }));
    for (const [method, path, body, param] of [
      ['POST', '/v1/keys', { role: 'developer', allowed_ips: ['10.0.0.0/8', 'not-an-ip'] }, 'allowed_ips[1]'],
      ['POST', '/v1/keys', { role: 'developer', allowed_ips: ['10.0.0.0/33'] }, 'allowed_ips[0]'],
      ['POST', '/v1/teams', { name: 'Typo', allowed_ips: ['192.168.1.300'] }, 'allowed_ips[0]'],
      ['POST', `/v1/teams/${String(team.id)}/members`, { email: 'a@ranges.example', role: 'developer', allowed_ips: ['2001:db8::/129'] }, 'allowed_ips[0]'],
      ['PATCH', `/v1/teams/${String(team.id)}`, { allowed_ips: ['10.0.0.1', 'office'] }, 'allowed_ips[1]'],
      // QA12: forms that read as addresses but match nothing. A zone id names the writer's interface;
      // an IPv4-mapped address with a prefix below /96 is IPv6 space no IPv4 client is in.
      ['POST', '/v1/keys', { role: 'developer', allowed_ips: ['10.0.0.0/8', '::ffff:10.0.0.1/24'] }, 'allowed_ips[1]'],
      ['POST', '/v1/keys', { role: 'developer', allowed_ips: ['fe80::1%eth0'] }, 'allowed_ips[0]'],
      ['POST', '/v1/teams', { name: 'Zone', allowed_ips: ['fe80::/10', 'fe80::1%25eth0'] }, 'allowed_ips[1]'],
      ['POST', `/v1/teams/${String(team.id)}/members`, { email: 'b@ranges.example', role: 'developer', allowed_ips: ['::ffff:10.0.0.0/95'] }, 'allowed_ips[0]'],
      ['PATCH', `/v1/teams/${String(team.id)}`, { allowed_ips: ['::ffff:192.0.2.1/64'] }, 'allowed_ips[0]'],
    ] as const) {
      const response = await call(gateway, method, path, body, { key: adminKey });
      const error = ((await response.json()) as { error: { code: string; param: string; message: string } }).error;
      expect({ path, status: response.status, code: error.code, param: error.param }).toEqual({ path, status: 400, code: 'invalid_field', param });
      expect(error.message).toContain('CIDR range');
    }
    // Addresses and ranges of both families, host bits past the prefix included, are taken.
    const taken = await call(
      gateway,
      'POST',
      '/v1/keys',
      { role: 'developer', allowed_ips: ['203.0.113.7', '10.0.0.5/8', '2001:db8::/32', '::1', '::ffff:10.0.0.1', '::ffff:10.0.0.0/104'] },
      { key: adminKey },
    );
    expect(taken.status).toBe(201);
  });
});
