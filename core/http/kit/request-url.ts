// A request's URL, whatever its Host header says. Bun forms `request.url` from the Host header and the
// request line: without a Host (legal in HTTP/1.0, and HAProxy's default health check sends none) it
// is the bare path (`/health`), and a malformed one (`a b`, `[::1`, `a:99999`) leaves text that does
// not parse, so `new URL(request.url)` throws. Keyway serves the same answers on every host name, so
// such a request is read as the path it asked for (QA17: the throw reached Bun as an uncaught error).

/** The origin put in front of a path whose Host header gave none that parses; no answer depends on it. */
const PLACEHOLDER_ORIGIN = 'http://localhost';

/** `new URL(request.url)` that never throws: the path and query as sent, the host only when the Host header gave one that parses. */
export function requestUrl(request: Request): URL {
  const text = request.url;
  try {
    return new URL(text);
  } catch {
    return new URL(`${PLACEHOLDER_ORIGIN}${pathOf(text)}`);
  }
}

/** The path and query of Bun's request URL: all of it when it starts with `/`, else what follows the authority. */
function pathOf(text: string): string {
  if (text.startsWith('/')) return text;
  const authority = text.indexOf('://');
  const path = authority === -1 ? -1 : text.indexOf('/', authority + 3);
  // `OPTIONS *` names no path at all: read as the root, which is no route's but answers in the spec's shape.
  return path === -1 ? '/' : text.slice(path);
}

/**
 * A path segment's percent-escapes decoded (a client may escape a model name's slash), or the text as
 * sent when it holds an escape that is no UTF-8 (`%FF`, `%C3%28`, a lone `%`): such a name names nothing
 * stored, so the route answers its usual 404 instead of the URIError a bare `decodeURIComponent` throws.
 * For `*` parameters: the router leaves them encoded, while it decodes `:name` parameters itself.
 */
export function decodedPathPart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
