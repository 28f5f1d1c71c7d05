// allowed_ips on management calls: a key bound to a network (or a member of a team bound to one) is
// refused on every route with a role, not only at inference. Before this, a restricted admin key could
// mint an unrestricted admin key from anywhere.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let adminKey: string;

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
  gateway = await startTestGateway({ env: { KEYWAY_TRUSTED_PROXIES: '127.0.0.1,::1' }, probes: false });
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
