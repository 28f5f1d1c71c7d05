// Cross-origin requests from browsers, for the origins the operator lists in KEYWAY_CORS_ORIGINS
// (off by default). A page's JavaScript holds the gateway key it calls with, so every user of that
// page can read the key: CORS is for keys meant to be exposed that way (docs/security.md, "Browsers
// and CORS"). Credentials (cookies) are never allowed cross-origin, so a dashboard session cannot be
// used from another site, and the dashboard's anti-CSRF header is not among the allowed ones.

import { requestUrl } from './kit/request-url.ts';

/** `*`, or the exact origins (`https://app.example.com`, `http://localhost:5173`) allowed to call. */
export type CorsOrigins = '*' | ReadonlySet<string>;

/** The request headers Keyway reads, which a browser may send cross-origin. */
const ALLOWED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'content-type',
  'x-api-key',
  'x-request-id',
  'x-team-id',
  'x-project-tag',
  'x-provider',
  'x-provider-key',
  'x-use-byok',
  'x-session-id',
  'x-approval-id',
]);

/**
 * The `x-stainless-*` telemetry the official SDKs send on every call (Keyway ignores it): refusing it
 * would fail every SDK call's preflight. A dialect's own headers come from its routes
 * (RouteDefinition.corsRequestHeaders).
 */
const SDK_HEADER_PREFIX = 'x-stainless-';

/** The answer headers the spec lists, readable by the page's script (it sees only a few by default). */
const EXPOSED_HEADERS = [
  'X-Request-Id',
  'X-Provider-Used',
  'X-BYOK-Used',
  'X-Model-Used',
  'X-Key-Id',
  'X-Fallback-Attempts',
  'X-Keyway-Cost',
  'X-Keyway-Warnings',
  'X-Keyway-Worker',
  'Retry-After',
  'X-Should-Retry',
  'request-id',
].join(', ');

/** How long a browser may reuse a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/**
 * `KEYWAY_CORS_ORIGINS`: comma-separated origins, or `*` alone; empty or unset is undefined (no CORS).
 * An entry that is not a bare origin (a path, a trailing `/*`, a missing scheme) is refused: a typo must
 * not open CORS wider or narrower than meant.
 */
export function parseCorsOrigins(text: string | undefined): CorsOrigins | undefined {
  const entries = (text ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return undefined;
  if (entries.includes('*')) {
    if (entries.length > 1) throw new Error("KEYWAY_CORS_ORIGINS: '*' allows every origin and stands alone");
    return '*';
  }
  const origins = new Set<string>();
  for (const entry of entries) origins.add(originOf(entry));
  return origins;
}

/** The origin as browsers send it: lower-case scheme and host, no default port, no path (a trailing `/` is forgiven). */
function originOf(entry: string): string {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new Error(`KEYWAY_CORS_ORIGINS: '${entry}' is not an origin; write it as scheme://host[:port], e.g. https://app.example.com`);
  }
  const bare = (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && url.search === '' && url.hash === '';
  if (!bare || url.username !== '' || url.password !== '' || entry.includes('*')) {
    throw new Error(`KEYWAY_CORS_ORIGINS: '${entry}' is not an origin; write only scheme://host[:port] (no path), e.g. ${url.origin}`);
  }
  return url.origin;
}

/**
 * What the preflight allows of the headers asked for: those asked for that are allowed (a browser
 * refuses the request if one it asked for is missing), or the fixed list when it asked for none.
 */
function allowedRequestHeaders(asked: string | null, allowed: ReadonlySet<string>): string {
  const names = (asked ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '' && (allowed.has(name) || name.startsWith(SDK_HEADER_PREFIX)));
  return names.length > 0 ? names.join(', ') : [...allowed].join(', ');
}

export interface CorsHandler {
  /**
   * Runs before routing. A preflight from an allowed origin, for a path and method Keyway serves, is
   * answered here (204); any other request from an allowed origin gets its CORS answer headers in
   * `headers` (the framework adds them to whatever answers it). Anything else is left alone: a
   * preflight from another origin then meets the 405 any OPTIONS gets, which fails it.
   */
  (request: Request, headers: Record<string, string | number>): Response | undefined;
}

/**
 * `methodsOf(pathname)`: the methods the path is registered under (core/http/allowed-methods.ts);
 * `dialectHeaders`: the request headers plugin routes declare (RouteDefinition.corsRequestHeaders).
 */
export function createCors(origins: CorsOrigins, methodsOf: (pathname: string) => string[], dialectHeaders: readonly string[] = []): CorsHandler {
  const allowedHeaders: ReadonlySet<string> = new Set([...ALLOWED_HEADERS, ...dialectHeaders.map((name) => name.toLowerCase())]);
  const allowedOrigin = (origin: string): string | undefined => (origins === '*' ? '*' : origins.has(origin) ? origin : undefined);
  return (request, headers) => {
    // With a list of origins every answer depends on the Origin header, including the answers without
    // CORS headers: a shared cache must not serve one origin's stored answer to another.
    if (origins !== '*') headers.vary = 'Origin';
    const origin = request.headers.get('origin');
    if (origin === null) return undefined;
    const allowed = allowedOrigin(origin);
    if (allowed === undefined) return undefined;
    const vary = allowed === '*' ? undefined : 'Origin';
    const askedMethod = request.method === 'OPTIONS' ? request.headers.get('access-control-request-method') : null;
    if (askedMethod !== null) {
      const methods = methodsOf(requestUrl(request).pathname);
      if (!methods.includes(askedMethod.toUpperCase())) return undefined;
      const answer: Record<string, string> = {
        'access-control-allow-origin': allowed,
        'access-control-allow-methods': methods.join(', '),
        'access-control-allow-headers': allowedRequestHeaders(request.headers.get('access-control-request-headers'), allowedHeaders),
        'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
      };
      if (vary !== undefined) answer.vary = vary;
      return new Response(null, { status: 204, headers: answer });
    }
    headers['access-control-allow-origin'] = allowed;
    headers['access-control-expose-headers'] = EXPOSED_HEADERS;
    if (vary !== undefined) headers.vary = vary;
    return undefined;
  };
}
