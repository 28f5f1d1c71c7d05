// A connect deadline. fetch() does not say when a connection opens, so when a request sets a
// connect timeout Keyway opens a bare TCP connection to an upstream it has not reached recently,
// within that deadline, before the real call. Reached origins are remembered for a while, so a
// warm upstream pays nothing.

const REMEMBER_MS = 30_000;
const reachedUntil = new Map<string, number>();

export class ConnectTimeoutError extends Error {
  override name = 'ConnectTimeoutError';
}

export async function ensureConnectable(url: string, timeoutMs: number | undefined): Promise<void> {
  if (timeoutMs === undefined) return;
  const target = new URL(url);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const origin = `${target.hostname}:${port}`;
  if ((reachedUntil.get(origin) ?? 0) > Date.now()) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ConnectTimeoutError(`could not connect to ${origin} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const socket = await Promise.race([
      Bun.connect({ hostname: target.hostname.replace(/^\[|\]$/g, ''), port, socket: { data() {}, error() {}, close() {} } }),
      deadline,
    ]);
    socket.end();
    reachedUntil.set(origin, Date.now() + REMEMBER_MS);
  } finally {
    clearTimeout(timer);
  }
}

export function forgetConnections(): void {
  reachedUntil.clear();
}
