import { afterEach, describe, expect, test } from 'bun:test';
import { gzipSync } from 'node:zlib';
import { createPooledFetch, type PooledFetch } from '../../core/wire/http1/client.ts';
import { answer, type RawServer, startRawServer } from './raw-server.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function client(options: Parameters<typeof createPooledFetch>[0] = {}): PooledFetch {
  const pooled = createPooledFetch({ environment: {}, ...options });
  cleanups.push(() => pooled.close());
  return pooled;
}

function raw(handler: Parameters<typeof startRawServer>[0]): RawServer {
  const server = startRawServer(handler);
  cleanups.push(() => server.stop());
  return server;
}

const manual = (init: RequestInit = {}): RequestInit => ({ redirect: 'manual', ...init });

describe('framing', () => {
  test('a Content-Length body, with the request body, headers and method as sent', async () => {
    const seen: { head: string; body: string }[] = [];
    const server = raw((request, { socket }) => {
      seen.push(request);
      socket.write(answer('hello', 'x-answer: yes\r\n'));
    });
    const response = await client()(
      `${server.url}/v1/chat?x=1`,
      manual({ method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: '{"a":"é"}' }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('x-answer')).toBe('yes');
    expect(await response.text()).toBe('hello');
    const head = seen[0]?.head ?? '';
    expect(head.startsWith('POST /v1/chat?x=1 HTTP/1.1\r\n')).toBe(true);
    expect(head).toContain(`host: 127.0.0.1:${server.listener.port}`);
    expect(head).toContain('authorization: Bearer k');
    expect(head).toContain('accept-encoding: identity');
    expect(head).toContain(`content-length: ${Buffer.byteLength('{"a":"é"}')}`);
    expect(Buffer.from(seen[0]?.body ?? '', 'latin1').toString('utf8')).toBe('{"a":"é"}');
  });

  test('a chunked body split at every byte, with chunk extensions and trailers', async () => {
    const server = raw((_request, { socket }) => {
      const wire = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n';
      let index = 0;
      const timer = setInterval(() => {
        socket.write(wire.slice(index, index + 3));
        index += 3;
        if (index >= wire.length) clearInterval(timer);
      }, 1);
    });
    const pooled = client();
    const response = await pooled(`${server.url}/`, manual());
    expect(await response.text()).toBe('hello, world');
    expect(pooled.pool.idleCount()).toBe(1);
  });

  test('a Bun.serve streamed (chunked) answer', async () => {
    const server = Bun.serve({
      port: 0,
      fetch: () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              for (let index = 0; index < 5; index++) {
                controller.enqueue(new TextEncoder().encode(`data: ${index}\n\n`));
                await Bun.sleep(2);
              }
              controller.close();
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    });
    cleanups.push(() => server.stop(true));
    const response = await client()(`http://127.0.0.1:${server.port}/`, manual());
    expect(await response.text()).toBe('data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n');
  });

  test('a close-delimited body ends at the close and the connection is not kept', async () => {
    const server = raw((_request, { socket }) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nfirst ');
      setTimeout(() => {
        socket.write('second');
        socket.end();
      }, 5);
    });
    const pooled = client();
    const response = await pooled(`${server.url}/`, manual());
    expect(await response.text()).toBe('first second');
    expect(pooled.pool.idleCount()).toBe(0);
  });

  test('204, HEAD and an interim 100 have no body; a redirect is returned as it is', async () => {
    const server = raw((request, { socket }) => {
      if (request.head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n');
      else if (request.head.includes('/empty')) socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
      else socket.write('HTTP/1.1 302 Found\r\nlocation: http://elsewhere.invalid/\r\ncontent-length: 0\r\n\r\n');
    });
    const pooled = client();
    const head = await pooled(`${server.url}/`, manual({ method: 'HEAD' }));
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const empty = await pooled(`${server.url}/empty`, manual());
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    const redirect = await pooled(`${server.url}/moved`, manual());
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('http://elsewhere.invalid/');
    expect(server.connections()).toBe(1);
  });

  test('a gzip body sent despite accept-encoding: identity is decoded', async () => {
    const compressed = gzipSync('squeezed');
    const server = raw((_request, { socket }) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${compressed.length}\r\n\r\n`);
      socket.write(compressed);
    });
    expect(await (await client()(`${server.url}/`, manual())).text()).toBe('squeezed');
  });

  test('a malformed answer fails with a protocol error', async () => {
    const server = raw((_request, { socket }) => socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'));
    const response = await client()(`${server.url}/`, manual());
    const error = await response.text().catch((failure: unknown) => failure);
    expect((error as { code?: string }).code).toBe('EPROTO');
  });
});

describe('keep-alive', () => {
  test('sequential requests reuse one connection', async () => {
    const server = raw((request, { socket }) => socket.write(answer(`answer ${request.index}`)));
    const pooled = client();
    for (let index = 0; index < 5; index++) expect(await (await pooled(`${server.url}/`, manual())).text()).toBe(`answer ${index}`);
    expect(server.connections()).toBe(1);
  });

  test('a connection the peer closed between requests is not reused', async () => {
    const server = raw((_request, { socket }) => {
      socket.write(answer('once'));
      setTimeout(() => socket.end(), 1);
    });
    const pooled = client();
    expect(await (await pooled(`${server.url}/`, manual())).text()).toBe('once');
    await Bun.sleep(50);
    expect(pooled.pool.idleCount()).toBe(0);
    expect(await (await pooled(`${server.url}/`, manual())).text()).toBe('once');
    expect(server.connections()).toBe(2);
  });

  test('Connection: close is honoured', async () => {
    const server = raw((_request, { socket }) => socket.write(answer('bye', 'connection: close\r\n')));
    const pooled = client();
    await (await pooled(`${server.url}/`, manual())).text();
    expect(pooled.pool.idleCount()).toBe(0);
  });

  test('a reused connection closed before answering: a GET is retried once on a fresh one, a POST is not', async () => {
    const server = raw((request, { socket, number }) => {
      // The first connection answers once, then closes on its next request without answering (an idle close racing a request).
      if (number === 1 && request.index > 0) socket.end();
      else socket.write(answer(`from ${number}`));
    });
    const pooled = client();
    expect(await (await pooled(`${server.url}/`, manual())).text()).toBe('from 1');
    expect(await (await pooled(`${server.url}/`, manual())).text()).toBe('from 2');
    expect(server.connections()).toBe(2);

    const second = raw((request, { socket, number }) => {
      if (number === 1 && request.index > 0) socket.end();
      else socket.write(answer(`from ${number}`));
    });
    expect(await (await pooled(`${second.url}/`, manual({ method: 'POST', body: 'x' }))).text()).toBe('from 1');
    const error = await pooled(`${second.url}/`, manual({ method: 'POST', body: 'x' })).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as { code?: string }).code).toBe('ECONNRESET');
    expect(second.connections()).toBe(1);
  });

  test('a POST on a reused connection the upstream resets after reading it is not retried', async () => {
    const server = raw((request, { socket, number }) => {
      if (number === 1 && request.index > 0) socket.terminate();
      else socket.write(answer(`from ${number}`));
    });
    const pooled = client();
    expect(await (await pooled(`${server.url}/`, manual({ method: 'POST', body: 'x' }))).text()).toBe('from 1');
    const error = await pooled(`${server.url}/`, manual({ method: 'POST', body: 'x' })).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(TypeError);
    expect(server.connections()).toBe(1);
  });

  test('idle connections past the idle timeout are closed', async () => {
    const server = raw((_request, { socket }) => socket.write(answer('ok')));
    const pooled = client({ idleTimeoutMs: 100 });
    await (await pooled(`${server.url}/`, manual())).text();
    expect(pooled.pool.idleCount()).toBe(1);
    await Bun.sleep(300);
    expect(pooled.pool.idleCount()).toBe(0);
  });
});

describe('cancellation and backpressure', () => {
  test('an abort before the answer rejects with the reason and closes the connection', async () => {
    let peerClosed = false;
    const listener = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data: () => undefined,
        close: () => {
          peerClosed = true;
        },
      },
    });
    cleanups.push(() => listener.stop(true));
    const controller = new AbortController();
    const pending = client()(`http://127.0.0.1:${listener.port}/`, manual({ signal: controller.signal }));
    await Bun.sleep(20);
    controller.abort(new Error('deadline'));
    const error = await pending.catch((failure: unknown) => failure);
    expect((error as Error).message).toBe('deadline');
    await Bun.sleep(50);
    expect(peerClosed).toBe(true);
  });

  test('an already aborted signal never connects', async () => {
    const server = raw(() => undefined);
    const error = await client()(`${server.url}/`, manual({ signal: AbortSignal.abort() })).catch((failure: unknown) => failure);
    expect((error as Error).name).toBe('AbortError');
    expect(server.connections()).toBe(0);
  });

  test('an abort mid-body errors the body and the connection is destroyed, not reused', async () => {
    let peerClosed = false;
    const listener = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data: (socket) => {
          socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n');
        },
        close: () => {
          peerClosed = true;
        },
      },
    });
    cleanups.push(() => listener.stop(true));
    const pooled = client();
    const controller = new AbortController();
    const response = await pooled(`http://127.0.0.1:${listener.port}/`, manual({ signal: controller.signal }));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect(Buffer.from((await reader.read()).value ?? []).toString()).toBe('first');
    controller.abort();
    const error = await reader.read().catch((failure: unknown) => failure);
    expect((error as Error).name).toBe('AbortError');
    await Bun.sleep(50);
    expect(peerClosed).toBe(true);
    expect(pooled.pool.idleCount()).toBe(0);
  });

  test('a slow reader pauses the socket: the upstream cannot write the whole body ahead of it', async () => {
    const total = 64 * 1024 * 1024;
    const block = Buffer.alloc(1024 * 1024, 97);
    let written = 0;
    const listener = Bun.listen<{ left: number }>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open: (socket) => {
          socket.data = { left: 0 };
        },
        data: (socket) => {
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
          socket.data.left = total;
          pump(socket);
        },
        drain: (socket) => pump(socket),
      },
    });
    function pump(socket: { write(data: Uint8Array): number; data: { left: number } }): void {
      while (socket.data.left > 0) {
        const size = Math.min(block.length, socket.data.left);
        const sent = socket.write(block.subarray(0, size));
        if (sent <= 0) return;
        written += sent;
        socket.data.left -= sent;
        if (sent < size) return;
      }
    }
    cleanups.push(() => listener.stop(true));
    const response = await client()(`http://127.0.0.1:${listener.port}/`, manual());
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await Bun.sleep(300);
    // Only the kernel's socket buffers and the stream's 64 KiB may be ahead of the reader.
    expect(written).toBeLessThan(total / 4);
    let received = 0;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) received += chunk.value.byteLength;
    expect(written).toBe(total);
    expect(received).toBeGreaterThan(total - 2 * 1024 * 1024);
  });

  test('a reader that cancels closes the connection', async () => {
    const server = raw((_request, { socket }) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart'));
    const pooled = client();
    const response = await pooled(`${server.url}/`, manual());
    await response.body?.cancel();
    expect(pooled.pool.idleCount()).toBe(0);
  });
});

describe('errors and fallback', () => {
  test('a refused connection fails like fetch: a TypeError with ECONNREFUSED', async () => {
    const server = raw(() => undefined);
    const port = server.listener.port;
    server.stop();
    const error = await client()(`http://127.0.0.1:${port}/`, manual()).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as { code?: string }).code).toBe('ECONNREFUSED');
  });

  test.each([
    ['a close-delimited body cut by a reset fails instead of ending', 'content-type: text/plain', 'reset'],
    ['an upstream that closes mid-body errors the body with ECONNRESET', 'content-length: 100', 'close'],
  ] as const)('%s', async (_name, framing, ending) => {
    const server = raw((_request, { socket }) => {
      socket.write(`HTTP/1.1 200 OK\r\n${framing}\r\n\r\npart`);
      setTimeout(() => (ending === 'reset' ? socket.terminate() : socket.end()), 5);
    });
    const response = await client()(`${server.url}/`, manual());
    const error = await response.text().catch((failure: unknown) => failure);
    expect((error as { code?: string }).code).toBe('ECONNRESET');
  });

  test('a header value with a line break is refused before anything is sent', async () => {
    const server = raw(() => undefined);
    const error = await client()(`${server.url}/`, manual({ headers: { 'x-evil': 'a\r\nx-injected: 1' } })).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(TypeError);
    expect(server.connections()).toBe(0);
  });

  test('what the pool does not do goes to fetch: followed redirects, proxies, streams, a caller encoding', async () => {
    const calls: string[] = [];
    const fallback = (async (input: string | URL | Request) => {
      calls.push(String(input));
      return new Response('from fetch');
    }) as typeof fetch;
    const server = raw((_request, { socket }) => socket.write(answer('from pool')));
    const pooled = client({ fallback });
    const proxied = client({ fallback, environment: { HTTPS_PROXY: 'http://proxy.invalid:3128' } });
    expect(await (await pooled(`${server.url}/`)).text()).toBe('from fetch');
    expect(await (await pooled(`${server.url}/`, manual({ headers: { 'accept-encoding': 'gzip' } }))).text()).toBe('from fetch');
    expect(await (await pooled(`${server.url}/`, manual({ method: 'POST', body: new Blob(['x']) }))).text()).toBe('from fetch');
    expect(await (await proxied('https://api.example.invalid/', manual())).text()).toBe('from fetch');
    expect(await (await proxied(`${server.url}/`, manual())).text()).toBe('from pool');
    expect(calls).toHaveLength(4);
  });
});
