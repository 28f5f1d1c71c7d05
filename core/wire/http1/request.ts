// Turning fetch's (input, init) into one serialised HTTP/1.1 request, or deciding that fetch itself
// must take the call (anything this client does not do the way fetch would: see planRequest).

import { UpstreamConnectionError } from './errors.ts';
import type { ConnectionTarget } from './connection.ts';

export interface PlannedRequest {
  target: ConnectionTarget;
  method: string;
  /** The whole request; a string body stays a string, encoded once by the socket's write. */
  wire: string | Buffer;
  /** Its length in bytes. */
  byteLength: number;
  signal: AbortSignal | undefined;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORBIDDEN_VALUE = /[\r\n\0]/;
/** Headers the client writes itself from the request's framing. */
const FRAMING_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive']);
/** Bun's own fetch options: a call that uses one is fetch's. */
const FETCH_ONLY_OPTIONS = ['tls', 'proxy', 'unix', 'decompress', 'verbose'] as const;
const USER_AGENT = `Bun/${Bun.version}`;

/** The schemes whose calls go through a proxy (Bun's fetch honours HTTP_PROXY and HTTPS_PROXY), so stay with fetch. */
export function proxiedSchemes(environment: Record<string, string | undefined>): Set<string> {
  const schemes = new Set<string>();
  if (environment.HTTP_PROXY || environment.http_proxy) schemes.add('http:');
  if (environment.HTTPS_PROXY || environment.https_proxy) schemes.add('https:');
  return schemes;
}

type HeaderSource = Record<string, string> | Headers | [string, string][] | undefined;

function headerPairs(headers: HeaderSource): Iterable<[string, string]> {
  if (headers === undefined) return [];
  if (headers instanceof Headers || Array.isArray(headers)) return headers as Iterable<[string, string]>;
  return Object.entries(headers);
}

/**
 * The request this client sends, or undefined when fetch must send it: a Request object, a scheme
 * other than http(s), a proxied scheme, credentials in the URL, redirects to follow, a body other than
 * a string or bytes, an Accept-Encoding of the caller's (fetch decodes what it asked for), or Bun's
 * own options.
 */
export function planRequest(input: unknown, init: RequestInit | undefined, proxied: Set<string>): PlannedRequest | undefined {
  if (typeof input !== 'string' && !(input instanceof URL)) return undefined;
  if (init?.redirect !== 'manual') return undefined;
  for (const option of FETCH_ONLY_OPTIONS) if ((init as Record<string, unknown>)[option] !== undefined) return undefined;
  const body = init.body;
  let bodyBytes: Uint8Array | undefined;
  let bodyLength = 0;
  if (typeof body === 'string') bodyLength = Buffer.byteLength(body);
  else if (body instanceof Uint8Array) bodyBytes = body;
  else if (body instanceof ArrayBuffer) bodyBytes = new Uint8Array(body);
  else if (body !== undefined && body !== null) return undefined;
  if (bodyBytes !== undefined) bodyLength = bodyBytes.byteLength;
  const url = typeof input === 'string' ? new URL(input) : input;
  const secure = url.protocol === 'https:';
  if ((!secure && url.protocol !== 'http:') || proxied.has(url.protocol) || url.username !== '' || url.password !== '') return undefined;
  const method = (init.method ?? 'GET').toUpperCase();
  if (!TOKEN.test(method)) throw new TypeError(`${method} is not a valid HTTP method`);
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  let accept = false;
  let userAgent = false;
  for (const [name, value] of headerPairs(init.headers as HeaderSource)) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name) || FORBIDDEN_VALUE.test(value)) throw new TypeError(`the header ${JSON.stringify(name)} is not valid`);
    if (FRAMING_HEADERS.has(lower)) continue;
    if (lower === 'accept-encoding') return undefined;
    if (lower === 'accept') accept = true;
    else if (lower === 'user-agent') userAgent = true;
    head += `${name}: ${value}\r\n`;
  }
  // fetch's defaults, except the encoding: the body is relayed as it comes, so it is asked for unencoded.
  if (!accept) head += 'accept: */*\r\n';
  if (!userAgent) head += `user-agent: ${USER_AGENT}\r\n`;
  head += 'accept-encoding: identity\r\n';
  const hasBody = typeof body === 'string' || bodyBytes !== undefined;
  if (hasBody || method === 'POST' || method === 'PUT' || method === 'PATCH') head += `content-length: ${bodyLength}\r\n`;
  head += '\r\n';
  // Header values were checked for line breaks above; other non-ASCII text goes out as UTF-8, as a string write encodes it.
  const wire = typeof body === 'string' ? head + body : bodyBytes === undefined || bodyLength === 0 ? head : Buffer.concat([Buffer.from(head), bodyBytes]);
  const port = Number(url.port || (secure ? 443 : 80));
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const target: ConnectionTarget = { origin: `${url.protocol}//${url.hostname}:${port}`, hostname, port, secure };
  const byteLength = typeof wire === 'string' ? Buffer.byteLength(head) + bodyLength : wire.byteLength;
  return { target, method, wire, byteLength, signal: init.signal ?? undefined };
}

/**
 * An upstream that encodes its body although it was asked not to: gzip and deflate are decoded (as
 * fetch would), any other coding is a failure rather than bytes the caller cannot read.
 */
export function decoded(response: Response): Response {
  const coding = response.headers.get('content-encoding')?.trim().toLowerCase();
  if (coding === undefined || coding === '' || coding === 'identity' || response.body === null) return response;
  const format = coding === 'gzip' || coding === 'x-gzip' ? 'gzip' : coding === 'deflate' ? 'deflate' : undefined;
  if (format === undefined) {
    void response.body.cancel().catch(() => undefined);
    throw new UpstreamConnectionError('EPROTO', `the upstream answered in the ${coding} coding, which this client does not decode`);
  }
  const headers = new Headers(response.headers);
  headers.delete('content-encoding');
  headers.delete('content-length');
  return new Response(response.body.pipeThrough(new DecompressionStream(format)), { status: response.status, statusText: response.statusText, headers });
}
