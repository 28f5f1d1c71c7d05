// The Bun pass-through with its upstream call made by `fetch` (UPSTREAM_CLIENT=fetch) or by the
// Bun.connect pool (UPSTREAM_CLIENT=connect), or by Keyway's own client (UPSTREAM_CLIENT=pool,
// core/wire/http1); bench/upstream-client.ts runs all three.

import { createPooledFetch } from '../../core/wire/http1/client.ts';
import { Http1Pool } from './http1-pool.ts';

const upstream = new URL(process.env.PASSTHROUGH_UPSTREAM ?? 'http://127.0.0.1:8081');
const useConnect = process.env.UPSTREAM_CLIENT === 'connect';
const pool = new Http1Pool(upstream.hostname, Number(upstream.port));
const upstreamFetch = process.env.UPSTREAM_CLIENT === 'pool' ? createPooledFetch() : fetch;

Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PASSTHROUGH_PORT ?? '8082'),
  async fetch(request) {
    const path = request.url.slice(request.url.indexOf('/', 8));
    // Readiness probes (GET) go through fetch in both modes; only the measured POSTs differ.
    if (request.method === 'GET') return fetch(upstream.origin + path, { headers: request.headers });
    const body = new Uint8Array(await request.arrayBuffer());
    const headers = { authorization: request.headers.get('authorization') ?? '', 'content-type': 'application/json' };
    if (useConnect) {
      const answer = await pool.post(path, headers, body);
      return new Response(answer.body, { status: answer.status, headers: { 'content-type': 'application/json' } });
    }
    const answer = await upstreamFetch(upstream.origin + path, { method: 'POST', headers, body, redirect: 'manual' });
    return new Response(await answer.arrayBuffer(), { status: answer.status, headers: { 'content-type': 'application/json' } });
  },
});
