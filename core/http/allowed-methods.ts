// Which methods a path answers to, from the routes the app registered: a request whose path exists
// under another method is 405 `method_not_allowed` with an `Allow` header, not 404. Nothing here is
// a hand-kept list: every core and plugin route counts, with its parameters (`:id`) and wildcards.

/** A registered route as the HTTP framework lists it. */
export interface RegisteredRoute {
  method: string;
  path: string;
}

interface CompiledRoute {
  method: string;
  pattern: RegExp;
}

/** Methods that are not answers to a plain HTTP request (the framework's catch-all and WebSocket entries). */
const NOT_HTTP_METHODS: ReadonlySet<string> = new Set(['ALL', 'WS']);

/** A route path as a regular expression: `:name` is one segment (`:name?` an optional one), `*` anything. */
export function routePathPattern(path: string): RegExp {
  // A trailing slash is the same path to the router (it is not strict about them).
  return new RegExp(`^${routePathSource(path)}/?$`);
}

/** The route's path and every path below it (`/v1/messages/batches` under `/v1/messages`). */
export function routePathAndBelowPattern(path: string): RegExp {
  return new RegExp(`^${routePathSource(path)}(?:/.*)?$`);
}

function routePathSource(path: string): string {
  let source = '';
  for (const segment of path.split('/').slice(1)) {
    if (segment === '*') source += '(?:/.*)?';
    else if (segment.startsWith(':') && segment.endsWith('?')) source += '(?:/[^/]+)?';
    else if (segment.startsWith(':')) source += '/[^/]+';
    else source += `/${segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
  }
  return source;
}

/**
 * `allowedMethods(pathname)`: the methods the path is registered under, sorted, with HEAD wherever
 * GET is (the server answers HEAD for every GET route); empty for a path no route matches. The routes
 * are read (and compiled) on first use and again whenever more were registered.
 */
export function createAllowedMethods(routes: () => readonly RegisteredRoute[]): (pathname: string) => string[] {
  let compiled: CompiledRoute[] = [];
  let compiledCount = -1;
  return (pathname) => {
    const registered = routes();
    if (registered.length !== compiledCount) {
      compiled = registered
        .filter((route) => !NOT_HTTP_METHODS.has(route.method.toUpperCase()))
        .map((route) => ({ method: route.method.toUpperCase(), pattern: routePathPattern(route.path) }));
      compiledCount = registered.length;
    }
    const methods = new Set<string>();
    for (const route of compiled) if (route.pattern.test(pathname)) methods.add(route.method);
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
