// HTTP receivers for the webhook and Slack tests, and the fetch that reaches them. Production sends
// alerts only to https:// URLs; the tests keep those URLs (`https://receiver.test/…`,
// `https://hooks.slack.com/…`) and hand the gateway a fetch (the injectable `services.fetch`) that
// routes those hosts to a local plain-HTTP server, and a resolver that answers a public address for
// them (webhook deliveries are checked and pinned to it). No TLS setting is loosened for the tests.

export interface ReceivedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface Receiver {
  url: string;
  received: ReceivedRequest[];
  /** Paths answering an error: `path → statuses` consumed one per request, then 200. */
  failures: Map<string, number[]>;
  stop(): Promise<void>;
}

export function startReceiver(): Receiver {
  const received: ReceivedRequest[] = [];
  const failures = new Map<string, number[]>();
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path.startsWith('/down')) return new Response('receiver is down', { status: 503 });
      const planned = failures.get(path);
      const status = planned?.shift();
      if (status !== undefined) return new Response('try later', { status });
      const headers: Record<string, string> = {};
      request.headers.forEach((value, key) => {
        headers[key] = value;
      });
      received.push({ path, headers, body: await request.text() });
      return new Response('ok', { status: 200 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, failures, stop: () => server.stop(true) };
}

/** Hosts the tests' https:// targets use, all served by the receiver. */
export const TEST_HOSTS = ['receiver.test', 'hooks.slack.com'];

/**
 * The address the test resolver answers for them: public by the address rules (TEST-NET-3, a
 * documentation range no one routes), so webhook deliveries are admitted and pinned to it.
 */
export const TEST_HOST_ADDRESS = '203.0.113.80';

/** The resolver a test gateway checks webhook host names with: the test hosts have one public answer; any other name has none. */
export async function testResolver(host: string): Promise<string[]> {
  if (TEST_HOSTS.includes(host)) return [TEST_HOST_ADDRESS];
  throw Object.assign(new Error(`no test answer for ${host}`), { code: 'ENOTFOUND' });
}

/** True for a test host's URL, or for one the sender pinned to the test address with a test host as Host. */
function servedByReceiver(url: URL, init: RequestInit | undefined): boolean {
  if (url.protocol !== 'https:') return false;
  if (TEST_HOSTS.includes(url.hostname)) return true;
  const host = new Headers(init?.headers).get('host');
  return url.hostname === TEST_HOST_ADDRESS && host !== null && TEST_HOSTS.includes(new URL(`https://${host}/`).hostname);
}

/** A fetch that sends `https://<test host>/path` (or its pinned `https://<test address>/path`) to the receiver and everything else to the real fetch. */
export function routingFetch(receiver: Pick<Receiver, 'url'>): typeof fetch {
  const routed = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (servedByReceiver(url, init)) return fetch(`${receiver.url}${url.pathname}${url.search}`, init);
    return fetch(input, init);
  };
  return routed as typeof fetch;
}
