// Requests without a Host header (legal in HTTP/1.0: HAProxy's default health check, `OPTIONS /
// HTTP/1.0`) or with a malformed one (`a b`, empty, `[::1`, a port out of range) are answered as the
// path they ask for, in the spec's shape. Bun then forms a `request.url` that does not parse: QA17 found
// the 404 handler's `new URL(request.url)` throwing, which Bun answered with its developer error page
// (stack frames, source lines, the install path) to anyone, and the management routes' query check
// answering 500. An error no handler catches is the spec's 500, never that page.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { PLUGIN_API_VERSION, type PluginDefinition } from '../../core/spec/plugin.ts';
import { OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/** A plugin route whose 405 writer throws: the error reaches the server with no handler left to catch it. */
const brokenRefusal: PluginDefinition = {
  name: 'broken-refusal',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  setup: () => ({
    routes: [
      {
        method: 'POST',
        path: '/v1/broken-refusal',
        handle: () => new Response('{}'),
        refusal: () => {
          throw new Error('the refusal writer broke');
        },
      },
    ],
  }),
};

let gateway: TestGateway;
let withCors: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, extraPlugins: [{ definition: brokenRefusal, source: 'test' }] });
  withCors = await startTestGateway({ probes: false, env: { KEYWAY_CORS_ORIGINS: 'https://app.example.com' } });
});

afterAll(async () => {
  await gateway.stop();
  await withCors.stop();
});

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
}

/** Sends `head` as written on a connection of its own (no client fills in a Host) and reads the answer until the server closes. */
function raw(target: TestGateway, head: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(target.server.port, '127.0.0.1', () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const headers = text.slice(0, split);
      resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(headers)?.[1] ?? 0), headers, body: text.slice(split + 4) });
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(head.split('\r\n')[0])}`)));
  });
}

const key = `Authorization: Bearer ${OPERATOR_KEY}\r\n`;

/** The spec's error shape, and nothing of Bun's developer page, the code or where it is installed. */
function expectSpecError(answer: RawAnswer, status: number, code: string): void {
  expect(answer.body).not.toContain('__bunfallback');
  expect(answer.body).not.toContain(process.cwd());
  expect(answer.headers.toLowerCase()).toContain('content-type: application/json');
  expect({ status: answer.status, code: (JSON.parse(answer.body) as { error: { code: string } }).error.code }).toEqual({ status, code });
}

describe('no Host header, or a malformed one', () => {
  test('HTTP/1.0 without a Host: a health check works, an unknown path is the spec 404, OPTIONS too', async () => {
    const health = await raw(gateway, 'GET /health HTTP/1.0\r\n\r\n');
    expect({ status: health.status, body: JSON.parse(health.body) }).toEqual({ status: 200, body: { status: 'ok' } });
    expectSpecError(await raw(gateway, 'GET / HTTP/1.0\r\n\r\n'), 404, 'not_found');
    expectSpecError(await raw(gateway, 'OPTIONS / HTTP/1.0\r\n\r\n'), 404, 'not_found');
    const wrongMethod = await raw(gateway, `DELETE /v1/models HTTP/1.0\r\n${key}\r\n`);
    expectSpecError(wrongMethod, 405, 'method_not_allowed');
    expect(wrongMethod.headers.toLowerCase()).toContain('allow: get, head');
  });

  test('a malformed Host on an unknown path: 404 naming the path', async () => {
    for (const host of ['a b', '', '[::1', 'gateway:99999', 'gateway:port']) {
      const answer = await raw(gateway, `GET /nothing?x=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expectSpecError(answer, 404, 'not_found');
      expect(JSON.parse(answer.body).error.message).toBe('No route GET /nothing.');
    }
  });

  test('management routes read their query whatever the Host: answered, not a 500', async () => {
    for (const host of ['', '[::1']) {
      const listed = await raw(gateway, `GET /v1/platform/prices?provider=openai HTTP/1.1\r\nHost: ${host}\r\n${key}Connection: close\r\n\r\n`);
      expect(listed.status).toBe(200);
      const data = (JSON.parse(listed.body) as { data: Array<{ provider: string }> }).data;
      expect(data.length).toBeGreaterThan(0);
      expect(data.every((row) => row.provider === 'openai')).toBe(true);
      expectSpecError(await raw(gateway, `GET /v1/keys?x=1 HTTP/1.1\r\nHost: ${host}\r\n${key}Connection: close\r\n\r\n`), 400, 'invalid_field');
      // A plugin's route reads its query through services.http.requestUrl.
      expectSpecError(await raw(gateway, `GET /v1/alerts/events?nope=1 HTTP/1.1\r\nHost: ${host}\r\n${key}Connection: close\r\n\r\n`), 400, 'invalid_field');
    }
    const teams = await raw(gateway, `GET /v1/teams HTTP/1.0\r\n${key}\r\n`);
    expect(teams.status).toBe(200);
  });

  test('a CORS preflight without a Host is answered for its path', async () => {
    const answer = await raw(
      withCors,
      'OPTIONS /v1/chat/completions HTTP/1.0\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n\r\n',
    );
    expect(answer.status).toBe(204);
    expect(answer.headers.toLowerCase()).toContain('access-control-allow-methods: post');
  });
});

/** A client frame (masked, as the protocol asks of clients) holding `text`. */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([7, 1, 8, 2]);
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([head, mask, payload.map((byte, index) => byte ^ (mask[index % 4] as number))]);
}

/** Upgrades /v1/responses with `host` as the Host header, sends one turn, and answers the first event the gateway sends back. */
function webSocketTurn(host: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connect(gateway.server.port, '127.0.0.1', () =>
      socket.write(
        `GET /v1/responses HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\nAuthorization: Bearer ${gateway.defaultAdminKey}\r\n\r\n`,
      ),
    );
    let received = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!upgraded) {
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!received.subarray(0, end).toString().startsWith('HTTP/1.1 101')) return reject(new Error(received.toString()));
        upgraded = true;
        received = received.subarray(end + 4);
        socket.write(clientFrame(JSON.stringify({ type: 'response.create', ...body })));
      }
      // A server frame is unmasked: a length of 126 means two more length bytes.
      if (received.length < 2) return;
      const short = (received[1] as number) & 0x7f;
      const start = short === 126 ? 4 : 2;
      const length = short === 126 ? received.readUInt16BE(2) : short;
      if (received.length < start + length) return;
      socket.destroy();
      resolve(JSON.parse(received.subarray(start, start + length).toString()) as Record<string, unknown>);
    });
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('no WebSocket event')));
  });
}

describe('a WebSocket turn on /v1/responses with a malformed Host', () => {
  test('runs as any turn (here: no key for the provider), not a 500', async () => {
    const event = await webSocketTurn('[::1', { model: 'gpt-4o', input: 'hi' });
    expect(event).toMatchObject({ type: 'error', status: 503, error: { code: 'no_provider_available' } });
  });
});

describe('an error no handler catches', () => {
  test("is the spec's 500 internal_error, never Bun's developer page", async () => {
    const answer = await raw(gateway, `GET /v1/broken-refusal HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    expectSpecError(answer, 500, 'internal_error');
    expect(answer.body).not.toContain('the refusal writer broke');
    expect(answer.body).not.toContain('.ts');
    expect(gateway.output.join('\n')).toContain('the refusal writer broke');
  });
});
