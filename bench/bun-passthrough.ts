// The runtime's floor: the least any Bun proxy does per request (accept, read the body, fetch upstream,
// stream the answer back). A gateway written in Bun cannot beat this, so Keyway is judged against it.
//
//   PASSTHROUGH_PORT=8082 PASSTHROUGH_UPSTREAM=http://127.0.0.1:8081 bun bench/bun-passthrough.ts

const upstreamOrigin = process.env.PASSTHROUGH_UPSTREAM ?? 'http://127.0.0.1:8081';
const port = Number(process.env.PASSTHROUGH_PORT ?? '8082');

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  async fetch(request) {
    // The path starts at the first slash after "http://"; cheaper than building a URL object.
    const path = request.url.slice(request.url.indexOf('/', 8));
    const headers = new Headers(request.headers);
    headers.delete('host');
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    const upstream = await fetch(upstreamOrigin + path, {
      method: request.method,
      headers,
      // A gateway has to read the whole JSON body anyway, so the floor buffers it too.
      body: hasBody ? await request.arrayBuffer() : undefined,
    });
    const responseHeaders = new Headers(upstream.headers);
    // Bun frames the streamed body itself; a copied framing header would contradict it.
    responseHeaders.delete('content-length');
    responseHeaders.delete('transfer-encoding');
    return new Response(upstream.body, { status: upstream.status, headers: responseHeaders });
  },
});

console.log(JSON.stringify({ passthrough: 'listening', port: server.port, upstream: upstreamOrigin }));
