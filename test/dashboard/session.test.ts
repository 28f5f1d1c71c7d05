// Dashboard sessions over HTTP, as a browser (or an attacker's page) would send them: the cookie's
// attributes, what the session opens (management routes, with the anti-CSRF header only) and what it
// never opens (inference), sign-in from another origin, sign-out, expiry and key revocation.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const clock = new ManualClock(Date.UTC(2026, 11, 5, 9));
let gateway: TestGateway;

interface Opened {
  cookie: string;
  setCookie: string;
  csrf: string;
  body: Record<string, unknown>;
}

async function signIn(key: string, headers: Record<string, string> = {}): Promise<Opened> {
  const response = await fetch(`${gateway.url}/dashboard/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ key }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  expect(response.status).toBe(201);
  const setCookie = response.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0] ?? '', setCookie, csrf: String(body.csrf_token), body };
}

/** The session's cookie, with its anti-CSRF header (or another value, or none with null). */
const withSession = (opened: Opened, csrf: string | null = opened.csrf) => ({ cookie: opened.cookie, ...(csrf === null ? {} : { 'x-keyway-csrf': csrf }) });

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, logLevel: 'warn', clock, env: { KEYWAY_DASHBOARD_SESSION_HOURS: '8' } });
});

afterAll(async () => {
  await gateway.stop();
});

describe('dashboard sessions', () => {
  test('sign-in sets an HttpOnly, SameSite=Strict cookie holding a random id, never the key', async () => {
    const opened = await signIn(gateway.defaultAdminKey);
    expect(opened.setCookie).toMatch(/^keyway_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/);
    expect(opened.setCookie).not.toContain(gateway.defaultAdminKey);
    expect(JSON.stringify(opened.body)).not.toContain(gateway.defaultAdminKey);
    expect(opened.body).toMatchObject({ signed_in: true, role: 'admin', account_id: 'default' });
  });

  test('a plain form post (no script) signs in and lands back on the dashboard', async () => {
    const response = await fetch(`${gateway.url}/dashboard/session`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(gateway.url).origin },
      body: `key=${encodeURIComponent(gateway.defaultAdminKey)}`,
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/dashboard');
    const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const state = (await (await fetch(`${gateway.url}/dashboard/session`, { headers: { cookie } })).json()) as Record<string, unknown>;
    expect(state).toMatchObject({ signed_in: true, role: 'admin' });
  });

  test('the cookie is Secure when the request came over TLS (a proxy says so with X-Forwarded-Proto)', async () => {
    const opened = await signIn(gateway.defaultAdminKey, { 'x-forwarded-proto': 'https' });
    expect(opened.setCookie).toContain('; Secure');
  });

  test('a wrong key, a missing key and a sign-in posted from another site are refused', async () => {
    const wrong = await fetch(`${gateway.url}/dashboard/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"key":"kw_ak_nope"}',
    });
    await expectSpecError(wrong, 401, 'invalid_api_key');
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const missing = await fetch(`${gateway.url}/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await expectSpecError(missing, 400, 'missing_field');
    const foreign = await fetch(`${gateway.url}/dashboard/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: `key=${encodeURIComponent(gateway.defaultAdminKey)}`,
    });
    await expectSpecError(foreign, 403, 'permission_denied');
  });

  test('a pasted key holding a character no key has (an ellipsis, a line end, a tab) is 401 invalid_api_key, not a 500', async () => {
    const post = (body: string) => fetch(`${gateway.url}/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const key of ['kw_ak_abc\u2026', 'kw\nak', 'kw\u0000ak', `${gateway.defaultAdminKey}\u00a0x`, 'kw ak', 'kw\tak', 'clé']) {
      const refused = await post(JSON.stringify({ key }));
      const body = await expectSpecError(refused, 401, 'invalid_api_key');
      expect(JSON.stringify(body)).not.toContain(gateway.defaultAdminKey);
      expect(refused.headers.get('set-cookie')).toBeNull();
    }
    // The same through a form post, and a key with the line end a copy adds is still taken (trimmed).
    const form = await fetch(`${gateway.url}/dashboard/session`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${encodeURIComponent('kw_ak_abc\u2026')}`,
    });
    await expectSpecError(form, 401, 'invalid_api_key');
    expect((await post(JSON.stringify({ key: `${gateway.defaultAdminKey}\n` }))).status).toBe(201);
    expect(gateway.output.some((line) => line.includes('"level":"error"') || line.includes('unexpected error'))).toBe(false);
  });

  test('a body without a usable key names the field: missing for none, invalid for a key that is not text', async () => {
    const post = (body: string) => fetch(`${gateway.url}/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const body of ['{}', '{"key":null}', '{"key":"  "}', 'null', '[]']) {
      const error = await expectSpecError(await post(body), 400, 'missing_field');
      expect({ body, param: error.error.param, message: error.error.message }).toEqual({ body, param: 'key', message: "Missing required field 'key'." });
    }
    const numeric = await expectSpecError(await post('{"key":123}'), 400, 'invalid_field');
    expect(numeric.error.param).toBe('key');
  });

  test('the session reaches management routes only with its anti-CSRF header, and never inference', async () => {
    const opened = await signIn(gateway.defaultAdminKey);
    expect((await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened) })).status).toBe(200);
    expect((await fetch(`${gateway.url}/v1/providers`, { headers: withSession(opened) })).status).toBe(200);
    const missing = await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened, null) }), 401, 'invalid_api_key');
    const forged = await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened, 'forged') }), 401, 'invalid_api_key');
    // The refusal says what is wrong: the anti-CSRF token, not a missing bearer key.
    expect(missing.error.message).toBe(
      'The dashboard session needs its anti-CSRF token: send the csrf_token that GET /dashboard/session answers in the X-Keyway-CSRF header.',
    );
    expect(forged.error.message).toBe(
      'The X-Keyway-CSRF header does not match the dashboard session: send the csrf_token that GET /dashboard/session answers now.',
    );
    // Without a live session (none, or an unknown cookie) it stays the usual 401 asking for a key.
    for (const headers of [{}, { cookie: 'keyway_session=unknown', 'x-keyway-csrf': 'x' }] as Array<Record<string, string>>) {
      const plain = await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers }), 401, 'invalid_api_key');
      expect(plain.error.message).toContain('Authorization: Bearer');
    }
    const write = await fetch(`${gateway.url}/v1/teams`, {
      method: 'POST',
      headers: { ...withSession(opened, null), 'content-type': 'application/json' },
      body: '{"name":"x"}',
    });
    await expectSpecError(write, 401, 'invalid_api_key');
    const inference = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...withSession(opened), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await expectSpecError(inference, 401, 'invalid_api_key');
  });

  test("a session acts with its key's role: a viewer's session is refused admin routes", async () => {
    const viewer = (await (await call(gateway, 'POST', '/v1/keys', { name: 'viewer', role: 'viewer' }, { key: gateway.defaultAdminKey })).json()) as {
      api_key: string;
    };
    const opened = await signIn(viewer.api_key);
    expect(opened.body.role).toBe('viewer');
    expect((await fetch(`${gateway.url}/v1/providers/health`, { headers: withSession(opened) })).status).toBe(200);
    await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened) }), 403, 'permission_denied');
  });

  test('sign-out ends the session on the server; it needs the anti-CSRF header', async () => {
    const opened = await signIn(gateway.defaultAdminKey);
    const forged = await fetch(`${gateway.url}/dashboard/session`, { method: 'DELETE', headers: withSession(opened, null) });
    await expectSpecError(forged, 403, 'permission_denied');
    expect((await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened) })).status).toBe(200);
    const out = await fetch(`${gateway.url}/dashboard/session`, { method: 'DELETE', headers: withSession(opened) });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened) }), 401, 'invalid_api_key');
    const state = (await (await fetch(`${gateway.url}/dashboard/session`, { headers: { cookie: opened.cookie } })).json()) as Record<string, unknown>;
    expect(state).toEqual({ signed_in: false });
  });

  test('a session expires, and revoking its gateway key ends it', async () => {
    const expiring = await signIn(gateway.defaultAdminKey);
    clock.advance(8 * 3_600_000 + 1);
    await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers: withSession(expiring) }), 401, 'invalid_api_key');
    const created = (await (await call(gateway, 'POST', '/v1/keys', { name: 'temp admin', role: 'admin' }, { key: gateway.defaultAdminKey })).json()) as {
      id: string;
      api_key: string;
    };
    const opened = await signIn(created.api_key);
    expect((await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened) })).status).toBe(200);
    expect((await call(gateway, 'DELETE', `/v1/keys/${created.id}`, undefined, { key: gateway.defaultAdminKey })).status).toBe(204);
    await expectSpecError(await fetch(`${gateway.url}/v1/teams`, { headers: withSession(opened) }), 401, 'invalid_api_key');
    const state = (await (await fetch(`${gateway.url}/dashboard/session`, { headers: { cookie: opened.cookie } })).json()) as Record<string, unknown>;
    expect(state).toEqual({ signed_in: false });
  });

  test('management writes through a session are audited under the signed-in key', async () => {
    const opened = await signIn(gateway.defaultAdminKey);
    const created = await fetch(`${gateway.url}/v1/teams`, {
      method: 'POST',
      headers: { ...withSession(opened), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Audited' }),
    });
    expect(created.status).toBe(201);
    await gateway.runtime.usage.flush();
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const log = (await (await call(gateway, 'GET', '/v1/audit-logs?type=admin', undefined, { key: gateway.defaultAdminKey })).json()) as {
        events: Array<{ action: string; actor: { key_id: string } }>;
      };
      const event = log.events.find((entry) => entry.action.includes('/v1/teams'));
      if (event !== undefined) {
        expect(event.actor.key_id).toBe(String(opened.body.key_id));
        return;
      }
      await Bun.sleep(50);
    }
    throw new Error('the team creation was not audited');
  });
});
