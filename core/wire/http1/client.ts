// Keyway's own upstream HTTP/1.1 client (KEYWAY_UPSTREAM_CLIENT=pool): a fetch-compatible function
// over a keep-alive pool of Bun.connect sockets, doing the exchange on the JS thread rather than
// handing it to Bun's HTTP client thread. What it does not do the way fetch would, fetch does
// (planRequest). Decision and figures: docs/configuration.md "Upstream client", bench/RESULTS.md.

import { openConnection, type TlsSettings } from './connection.ts';
import { StaleConnectionError } from './errors.ts';
import { ConnectionPool } from './pool.ts';
import { decoded, type PlannedRequest, planRequest, proxiedSchemes } from './request.ts';

export interface PooledFetchOptions {
  /** Idle connections kept per origin (default 256, Bun's fetch connection limit). */
  maxIdlePerOrigin?: number;
  /** How long an idle connection is kept (default 4 s, under Node's 5 s keep-alive timeout). */
  idleTimeoutMs?: number;
  tls?: TlsSettings;
  /** Takes the calls this client does not make itself (default: the global fetch). */
  fallback?: typeof fetch;
  /** Where HTTP_PROXY / HTTPS_PROXY are read (default: process.env). */
  environment?: Record<string, string | undefined>;
}

export type PooledFetch = typeof fetch & {
  /** Closes every idle connection; calls in flight finish. */
  close(): void;
  pool: ConnectionPool;
};

export function createPooledFetch(options: PooledFetchOptions = {}): PooledFetch {
  const pool = new ConnectionPool({ maxIdlePerOrigin: options.maxIdlePerOrigin ?? 256, idleTimeoutMs: options.idleTimeoutMs ?? 4000 });
  const fallback = options.fallback ?? globalThis.fetch;
  const proxied = proxiedSchemes(options.environment ?? process.env);
  const tls = options.tls ?? {};
  const pooledFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let plan: PlannedRequest | undefined;
    try {
      plan = planRequest(input, init, proxied);
    } catch (error) {
      return Promise.reject(error);
    }
    if (plan === undefined) return fallback(input, init);
    return exchange(pool, plan, tls);
  };
  return Object.assign(pooledFetch, { close: () => pool.close(), pool, preconnect: fallback.preconnect }) as PooledFetch;
}

/** One request: on a pooled connection, then once on a fresh one if the pooled one proved stale (the rule in connection.ts). */
async function exchange(pool: ConnectionPool, plan: PlannedRequest, tls: TlsSettings): Promise<Response> {
  const signal = plan.signal;
  if (signal?.aborted) throw signal.reason;
  const pooled = pool.acquire(plan.target.origin);
  if (pooled !== undefined) {
    try {
      return decoded(await pooled.send(plan.wire, plan.byteLength, plan.method, signal));
    } catch (error) {
      if (!(error instanceof StaleConnectionError)) throw error;
    }
  }
  // The stale connection may have failed after the signal fired.
  if (signal?.aborted) throw signal.reason;
  const fresh = await openConnection(plan.target, pool, tls, signal);
  return decoded(await fresh.send(plan.wire, plan.byteLength, plan.method, signal));
}
