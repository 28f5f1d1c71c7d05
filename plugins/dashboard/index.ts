// The web dashboard: `GET /dashboard` and its two assets, built from ./ui by scripts/build-dashboard.ts
// into assets.generated.ts so the compiled binary carries them (no CDN, works offline), and the session
// endpoints that turn a gateway key into an HttpOnly cookie. The page calls the public management API
// with that cookie plus an anti-CSRF header (the core's `sessionCredentials` contribution). Every route
// here is a plain plugin route with no role: nothing of it runs on the inference path.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Principal } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { numberSetting } from '../../core/spec/settings.ts';
import { CSRF_HEADER, createSessionStore, SESSION_COOKIE, type DashboardSession, type SessionStore } from './sessions.ts';

const DEFAULT_SESSION_HOURS = 8;

/** No inline script or style, nothing from another origin, no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * The built page, script and style (about 110 KB of source) load on the first request for one of
 * them: a gateway nobody opens the dashboard of never holds them (docs/architecture.md, "Memory").
 * A literal dynamic import, so `bun build --compile` still embeds the module.
 */
let assets: Promise<{ page: string; script: string; style: string }> | undefined;
function loadAssets(): Promise<{ page: string; script: string; style: string }> {
  assets ??= import('./assets.generated.ts').then(({ DASHBOARD_SCRIPT, DASHBOARD_STYLE, DASHBOARD_VERSION }) => ({
    page: page(DASHBOARD_VERSION),
    script: DASHBOARD_SCRIPT,
    style: DASHBOARD_STYLE,
  }));
  return assets;
}

const page = (version: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>Keyway dashboard</title>
<link rel="stylesheet" href="/dashboard/app.css?v=${version}">
<script type="module" src="/dashboard/app.js?v=${version}"></script>
</head>
<body>
<div id="app"><noscript>The Keyway dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;

/** How soon after the gateway listens its sessions are shared with the other workers or instances. */
const SHARE_AFTER_MS = 200;

export const dashboardPlugin = definePlugin({
  name: 'dashboard',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [{ name: 'KEYWAY_DASHBOARD_SESSION_HOURS', description: 'How long a dashboard session lasts' }],
  description: 'Web dashboard at /dashboard: sign-in with a gateway key, pages over the management API',
  setup({ services, env }) {
    // More than 0 and at most a year: 0, -1 or `abc` used to mean 8 hours without a word.
    const hours = numberSetting('KEYWAY_DASHBOARD_SESSION_HOURS', env.KEYWAY_DASHBOARD_SESSION_HOURS, DEFAULT_SESSION_HOURS, {
      minimum: 0,
      aboveMinimum: true,
      maximum: 8_760,
    });
    const lifetimeMs = hours * 3_600_000;
    const sessions = createSessionStore(lifetimeMs, () => services.clock.now());
    return {
      sessionCredentials: (headers) => sessionKeyHash(services, sessions, headers),
      sessionArrivals: (headers) => sessions.arrival(headers),
      // The cluster bus is bound once the gateway runs: the first tick of this job joins it (later ticks do nothing).
      jobs: [{ name: 'dashboard-sessions', intervalMs: SHARE_AFTER_MS, scope: 'instance', run: () => sessions.share(services.cluster) }],
      routes: [
        {
          method: 'GET',
          path: '/dashboard',
          summary: 'The web dashboard (HTML)',
          handle: async () => asset((await loadAssets()).page, 'text/html; charset=utf-8', 'no-store'),
        },
        {
          method: 'GET',
          path: '/dashboard/app.js',
          summary: 'The dashboard script',
          handle: async () => asset((await loadAssets()).script, 'text/javascript; charset=utf-8'),
        },
        {
          method: 'GET',
          path: '/dashboard/app.css',
          summary: 'The dashboard style sheet',
          handle: async () => asset((await loadAssets()).style, 'text/css; charset=utf-8'),
        },
        {
          method: 'POST',
          path: '/dashboard/session',
          summary: 'Signs in with a gateway key: sets the session cookie',
          handle: ({ request, clientAddress }) => signIn(services, sessions, request, clientAddress),
        },
        {
          method: 'GET',
          path: '/dashboard/session',
          summary: 'The signed-in principal and the anti-CSRF token',
          handle: ({ request, clientAddress }) => current(services, sessions, request, clientAddress),
        },
        {
          method: 'DELETE',
          path: '/dashboard/session',
          summary: 'Signs out: ends the session on the server',
          handle: ({ request }) => signOut(services, sessions, request),
        },
      ],
    };
  },
});

function asset(body: string, contentType: string, cacheControl = 'public, max-age=31536000, immutable'): Response {
  return new Response(body, { headers: { 'content-type': contentType, 'cache-control': cacheControl, ...SECURITY_HEADERS } });
}

function answer(services: Services, body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return services.http.json(body, status, { 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers });
}

function overTls(request: Request): boolean {
  // The scheme Bun put in the URL, read without parsing it: a request without a Host header has none.
  return request.url.startsWith('https:') || request.headers.get('x-forwarded-proto')?.toLowerCase() === 'https';
}

function sessionCookie(request: Request, value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${overTls(request) ? '; Secure' : ''}`;
}

/** A sign-in form posted from another site (login CSRF) is refused; browsers send Origin on every POST. */
function checkOrigin(services: Services, request: Request): void {
  const origin = request.headers.get('origin');
  if (origin === null) return;
  // Browsers always send Host; a request without one is no page's own.
  const host = request.headers.get('host');
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = undefined;
  }
  if (host === null || originHost !== host) throw services.errors.create('permission_denied', { detail: 'Sign-in must come from the dashboard itself.' });
}

const GATEWAY_KEY_CHARACTERS = /^[\x21-\x7e]+$/;

const isForm = (request: Request): boolean => (request.headers.get('content-type') ?? '').includes('application/x-www-form-urlencoded');

async function keyFrom(services: Services, request: Request): Promise<string> {
  let key: unknown;
  if (isForm(request)) {
    key = new URLSearchParams(await services.http.readText(request)).get('key');
  } else {
    const body = await services.http.readJson(request);
    key = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).key : undefined;
  }
  // The message names the field from the values, not from the options: `{}` here once read "Missing required field ''".
  if (key === undefined || key === null || (typeof key === 'string' && key.trim() === ''))
    throw services.errors.create('missing_field', { param: 'key' }, { param: 'key' });
  if (typeof key !== 'string') throw services.errors.create('invalid_field', { param: 'key', detail: 'must be a string: a gateway key' }, { param: 'key' });
  return key.trim();
}

async function signIn(services: Services, sessions: SessionStore, request: Request, clientAddress: () => string | undefined): Promise<Response> {
  checkOrigin(services, request);
  const key = await keyFrom(services, request);
  // A gateway key is printable ASCII without spaces; anything else (a `…` or a line end pasted with it)
  // is no key, and a header could not even carry it (QA17: `new Headers` threw, a 500).
  if (!GATEWAY_KEY_CHARACTERS.test(key)) throw services.errors.create('invalid_api_key');
  // A key bound to a network signs in from there only: elsewhere it would learn the key is good.
  const principal = services.auth.admit(new Headers({ authorization: `Bearer ${key}` }), clientAddress);
  const session = sessions.open(services.credentials.hashGatewayKey(key));
  const cookie = sessionCookie(request, session.id, Math.floor((session.expiresAt - session.createdAt) / 1000));
  // A plain form post (the page's script did not run) lands back on the dashboard, signed in.
  if (isForm(request))
    return new Response(null, { status: 303, headers: { location: '/dashboard', 'set-cookie': cookie, 'cache-control': 'no-store', ...SECURITY_HEADERS } });
  return answer(services, describe(principal, session), 201, { 'set-cookie': cookie });
}

/**
 * The session's key hash for a management call with the session cookie and its anti-CSRF header. A
 * live session whose header is missing or wrong is refused saying so: the generic 401 asks for a
 * bearer key, which tells a page left open across a new sign-in (its token is the old session's) nothing.
 */
function sessionKeyHash(services: Services, sessions: SessionStore, headers: Headers): string | undefined {
  const keyHash = sessions.resolve(headers);
  if (keyHash !== undefined || sessions.fromCookie(headers.get('cookie')) === undefined) return keyHash;
  const message =
    headers.get(CSRF_HEADER) === null
      ? 'The dashboard session needs its anti-CSRF token: send the csrf_token that GET /dashboard/session answers in the X-Keyway-CSRF header.'
      : 'The X-Keyway-CSRF header does not match the dashboard session: send the csrf_token that GET /dashboard/session answers now.';
  throw services.errors.create('invalid_api_key', {}, { message });
}

function principalOf(services: Services, session: DashboardSession): Principal {
  return services.auth.authenticate(new Headers({ cookie: `${SESSION_COOKIE}=${session.id}`, [CSRF_HEADER]: session.csrfToken }));
}

function current(services: Services, sessions: SessionStore, request: Request, clientAddress: () => string | undefined): Response {
  const session = sessions.fromCookie(request.headers.get('cookie'));
  // Not signed in is an ordinary state of the page, not an error the browser should log.
  if (session === undefined) return answer(services, { signed_in: false }, 200);
  let principal: Principal;
  try {
    principal = principalOf(services, session);
  } catch {
    // The key behind the session was revoked: the session ends with it.
    sessions.close(session.id);
    return answer(services, { signed_in: false }, 200, { 'set-cookie': sessionCookie(request, '', 0) });
  }
  // From outside the key's allowed_ips the page learns nothing of the key (its role, its account), as
  // every management call the page would make: 403 ip_not_allowed. The session is kept for the way back.
  services.auth.guardManagementCall(principal, clientAddress);
  return answer(services, describe(principal, session), 200);
}

function signOut(services: Services, sessions: SessionStore, request: Request): Response {
  const session = sessions.fromCookie(request.headers.get('cookie'));
  // Only the page itself may end its session: the anti-CSRF header proves it.
  if (session !== undefined && sessions.resolve(request.headers) !== undefined) sessions.close(session.id);
  else if (session !== undefined) throw services.errors.create('permission_denied', { detail: `Signing out needs the ${CSRF_HEADER} header.` });
  return new Response(null, { status: 204, headers: { 'set-cookie': sessionCookie(request, '', 0), 'cache-control': 'no-store', ...SECURITY_HEADERS } });
}

function describe(principal: Principal, session: DashboardSession) {
  return {
    signed_in: true,
    key_id: principal.keyId,
    role: principal.role,
    account_id: principal.accountId,
    team_id: principal.teamId ?? null,
    expires_at: new Date(session.expiresAt).toISOString(),
    csrf_token: session.csrfToken,
  };
}

export default dashboardPlugin;
