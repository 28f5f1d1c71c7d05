// Slow bodies, over raw HTTP: a client that trickles its body (a byte at a time, never silent long
// enough for Bun's idleTimeout) is cut off at KEYWAY_BODY_TIMEOUT_MS with the spec's 408
// `request_timeout` (Anthropic's shape on /v1/messages) and `Connection: close`, on inference and
// management routes alike, with a declared length or chunked; an inference request so refused is booked
// once, like any failed one. A body that arrives in time, in one piece or in several, is served as before.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { ConfigError, loadConfig } from '../../core/config.ts';
import type { PluginDefinition, RequestContext, RequestOutcome } from '../../core/spec/plugin.ts';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

/** Short, so a trickle reaches it quickly; long enough that a loaded machine sends a fast body well within it. */
const BODY_TIMEOUT_MS = 600;
/** A byte this often: the connection is never idle, and the body never complete before the deadline. */
const TRICKLE_EVERY_MS = 50;
/** How late after the deadline the 408 may arrive on a busy machine (the ticker itself fires within 5 ms). */
const LATENESS_MS = 1_500;
const PROVIDER_KEY = 'sk-sim-slow-bodies-0123456789abcdef00';

/** requestId → the outcomes the account hook saw. */
const booked = new Map<string, RequestOutcome[]>();

const bookkeeper: PluginDefinition = {
  name: 'test-slow-bodies-bookkeeper',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'policy',
  hooks: {
    account(context: RequestContext, outcome: RequestOutcome) {
      booked.set(context.requestId, [...(booked.get(context.requestId) ?? []), outcome]);
    },
  },
};

let simulator: SimulatorHandle;
let gateway: TestGateway;
let sequence = 0;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  gateway = await startTestGateway({
    extraPlugins: [{ definition: bookkeeper, source: 'test' }],
    probes: false,
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) },
  });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

const nextRequestId = (): string => `req_slow_body_${++sequence}`;

const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello, slowly.' }] });

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** From the request's headers being sent to the whole answer having arrived. */
  answeredAfterMs: number;
  /** The gateway closed the connection (not the test giving up). */
  closedByGateway: boolean;
  /** Body bytes sent before the answer came. */
  bytesSent: number;
}

interface RawRequest {
  method?: string;
  path: string;
  body: string;
  framing: 'length' | 'chunked';
  requestId: string;
  /** The body is sent in this many pieces, one every `everyMs` (one byte each when absent). */
  pieces?: number;
  everyMs?: number;
}

/** Splits text into `pieces` parts of near-equal length (single characters when `pieces` is absent). */
function splitInto(text: string, pieces: number | undefined): string[] {
  if (pieces === undefined) return [...text];
  const size = Math.ceil(text.length / pieces);
  return Array.from({ length: pieces }, (_, index) => text.slice(index * size, (index + 1) * size)).filter((piece) => piece.length > 0);
}

/** Parses one HTTP/1.1 answer with a Content-Length; undefined until all of it has arrived. */
function parseAnswer(raw: string): Omit<RawAnswer, 'answeredAfterMs' | 'closedByGateway' | 'bytesSent'> | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = raw.slice(end + 4);
  if (body.length < Number(headers['content-length'] ?? 0)) return undefined;
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

/**
 * Sends a request over a raw socket and its body piece by piece: `Content-Length` declared up front,
 * or chunked (one chunk per piece, then the last chunk). Stops sending once an answer arrives, and
 * gives up a while after the deadline would have passed.
 */
function sendRaw(request: RawRequest): Promise<RawAnswer> {
  const pieces = splitInto(request.body, request.pieces);
  const framing = request.framing === 'length' ? `Content-Length: ${Buffer.byteLength(request.body)}` : 'Transfer-Encoding: chunked';
  const head =
    `${request.method ?? 'POST'} ${request.path} HTTP/1.1\r\nHost: keyway.test\r\nAuthorization: Bearer ${OPERATOR_KEY}\r\n` +
    `Content-Type: application/json\r\nX-Request-Id: ${request.requestId}\r\n${framing}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
    let raw = '';
    let sent = 0;
    let bytesSent = 0;
    let startedAt = 0;
    let answeredAt: number | undefined;
    let closedByTest = false;
    let sender: ReturnType<typeof setInterval> | undefined;
    const sendNext = (): void => {
      if (answeredAt !== undefined || socket.destroyed) return;
      const piece = pieces[sent++];
      if (piece === undefined) {
        clearInterval(sender);
        if (request.framing === 'chunked') socket.write('0\r\n\r\n');
        return;
      }
      bytesSent += Buffer.byteLength(piece);
      socket.write(request.framing === 'chunked' ? `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n` : piece);
    };
    const giveUp = setTimeout(
      () => {
        closedByTest = true;
        socket.destroy();
      },
      BODY_TIMEOUT_MS + LATENESS_MS + 1_000,
    );
    socket.on('connect', () => {
      startedAt = performance.now();
      socket.write(head);
      sender = setInterval(sendNext, request.everyMs ?? TRICKLE_EVERY_MS);
    });
    socket.on('data', (data) => {
      raw += data.toString('latin1');
      const answer = answeredAt === undefined ? parseAnswer(raw) : undefined;
      if (answer === undefined) return;
      answeredAt = performance.now();
      // A keep-alive answer (a body served in time) leaves the connection open: the test closes it.
      if (answer.headers.connection?.toLowerCase() === 'close') return;
      closedByTest = true;
      socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(sender);
      clearTimeout(giveUp);
      const answer = parseAnswer(raw);
      if (answer === undefined)
        return reject(new Error(`no whole answer${closedByTest ? ' before the test gave up' : ''}; got ${JSON.stringify(raw.slice(0, 200))}`));
      resolve({ ...answer, answeredAfterMs: (answeredAt ?? performance.now()) - startedAt, closedByGateway: !closedByTest, bytesSent });
    });
  });
}

/** The 408 arrived at the deadline (not before, not long after) and the gateway then closed the connection. */
function expectCutAtDeadline(answer: RawAnswer, requestId: string): void {
  expect(answer.status).toBe(408);
  expect(answer.headers.connection?.toLowerCase()).toBe('close');
  expect(answer.headers['x-request-id']).toBe(requestId);
  expect(answer.answeredAfterMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS);
  expect(answer.answeredAfterMs).toBeLessThan(BODY_TIMEOUT_MS + LATENESS_MS);
  expect(answer.closedByGateway).toBe(true);
  // The client was never silent: bytes kept coming, which Bun's idleTimeout alone would have allowed.
  expect(answer.bytesSent).toBeGreaterThan(3);
}

const TIMEOUT_MESSAGE = `The request body did not arrive in full within ${BODY_TIMEOUT_MS} ms: it was sent too slowly.`;

function expectOpenAIShaped408(answer: RawAnswer): void {
  expect(JSON.parse(answer.body)).toEqual({ error: { message: TIMEOUT_MESSAGE, type: 'invalid_request_error', code: 'request_timeout', param: null } });
}

/** Booked exactly once, as a 408 `request_timeout` row, with no error-level log line (the client's doing). */
async function expectBookedOnce(requestId: string, endpoint: string): Promise<void> {
  for (let waited = 0; waited < 2_000 && (booked.get(requestId) ?? []).length === 0; waited += 20) await Bun.sleep(20);
  await flushUsage(gateway);
  expect((booked.get(requestId) ?? []).map((outcome) => [outcome.status, outcome.error?.code])).toEqual([[408, 'request_timeout']]);
  const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
  expect(rows.map(({ status, errorCode, endpoint: rowEndpoint }) => ({ status, errorCode, endpoint: rowEndpoint }))).toEqual([
    { status: 408, errorCode: 'request_timeout', endpoint },
  ]);
  const lines = gateway.output.filter((line) => line.includes(requestId)).map((line) => JSON.parse(line) as { level: number });
  expect(lines.filter((line) => line.level >= 50)).toEqual([]);
}

/** keyway_requests_total for chat requests that failed with this error code. */
async function requestsWithError(code: string): Promise<number> {
  const metrics = await (await call(gateway, 'GET', '/metrics')).text();
  return metrics
    .split('\n')
    .filter((line) => line.startsWith('keyway_requests_total{') && line.includes('endpoint="chat"') && line.includes(`error_type="${code}"`))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

describe('inference: a trickled body is cut off at the deadline with 408, booked once', () => {
  test('a declared Content-Length, a byte every 50 ms', async () => {
    const timeoutsBefore = await requestsWithError('request_timeout');
    const requestId = nextRequestId();
    const answer = await sendRaw({ path: '/v1/chat/completions', body: chatBody, framing: 'length', requestId });
    expectCutAtDeadline(answer, requestId);
    expectOpenAIShaped408(answer);
    await expectBookedOnce(requestId, 'chat');
    expect(simulator.inferenceRequests()).toHaveLength(0);
    expect(await requestsWithError('request_timeout')).toBe(timeoutsBefore + 1);
  });

  test('a chunked body, a one-byte chunk every 50 ms', async () => {
    const requestId = nextRequestId();
    const answer = await sendRaw({ path: '/v1/chat/completions', body: chatBody, framing: 'chunked', requestId });
    expectCutAtDeadline(answer, requestId);
    expectOpenAIShaped408(answer);
    await expectBookedOnce(requestId, 'chat');
  });

  test("/v1/messages answers in Anthropic's error shape, with its request-id header", async () => {
    const requestId = nextRequestId();
    const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'Say hello, slowly.' }] });
    const answer = await sendRaw({ path: '/v1/messages', body, framing: 'length', requestId });
    expectCutAtDeadline(answer, requestId);
    expect(answer.headers['request-id']).toBe(requestId);
    expect(JSON.parse(answer.body)).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: TIMEOUT_MESSAGE, code: 'request_timeout' },
      request_id: requestId,
    });
    await expectBookedOnce(requestId, 'messages');
  });
});

describe('the Responses API, whose stored-response preload peeks at the body before the lifecycle reads it', () => {
  test('one deadline for both reads: 408 at the deadline, not after two, booked once', async () => {
    const requestId = nextRequestId();
    const body = JSON.stringify({ model: 'gpt-4o-mini', input: 'Say hello, slowly.', previous_response_id: 'resp_none' });
    const answer = await sendRaw({ path: '/v1/responses', body, framing: 'length', requestId });
    expectCutAtDeadline(answer, requestId);
    expect(answer.answeredAfterMs).toBeLessThan(2 * BODY_TIMEOUT_MS);
    expectOpenAIShaped408(answer);
    await expectBookedOnce(requestId, 'responses');
  });
});

describe('management: every route that reads a body has the same deadline', () => {
  const teamName = 'slow-body-team';

  test('POST /v1/teams (a plugin route, services.http.readJson) with a declared length: 408, and no team created', async () => {
    const requestId = nextRequestId();
    const answer = await sendRaw({ path: '/v1/teams', body: JSON.stringify({ name: teamName }), framing: 'length', requestId });
    expectCutAtDeadline(answer, requestId);
    expectOpenAIShaped408(answer);
    const teams = (await (await call(gateway, 'GET', '/v1/teams')).json()) as { teams?: Array<{ name: string }> };
    expect(JSON.stringify(teams)).not.toContain(teamName);
  });

  test('POST /v1/keys (a core route) chunked: 408', async () => {
    const requestId = nextRequestId();
    const answer = await sendRaw({ path: '/v1/keys', body: JSON.stringify({ name: 'slow-key', role: 'developer' }), framing: 'chunked', requestId });
    expectCutAtDeadline(answer, requestId);
    expectOpenAIShaped408(answer);
  });

  test('routes that read an optional body as text (master-key rotation, reconciliation) have it too', async () => {
    for (const path of ['/v1/admin/master-key/rotate', '/v1/reconciliation/run']) {
      const requestId = nextRequestId();
      // Leading blanks keep it trickling past the deadline; had it all arrived, `{}` asks each route for its defaults.
      const answer = await sendRaw({ path, body: `${' '.repeat(60)}{}`, framing: 'length', requestId });
      expectCutAtDeadline(answer, requestId);
      expectOpenAIShaped408(answer);
    }
  });
});

describe('a body that arrives within the deadline is served as before', () => {
  test('in one piece', async () => {
    const requestId = nextRequestId();
    const response = await call(gateway, 'POST', '/v1/chat/completions', JSON.parse(chatBody), { headers: { 'x-request-id': requestId } });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { object: string }).object).toBe('chat.completion');
    const team = await call(gateway, 'POST', '/v1/teams', { name: 'fast-body-team' });
    expect(team.status).toBe(201);
  });

  test('in three pieces well inside the deadline, with a declared length and chunked', async () => {
    for (const framing of ['length', 'chunked'] as const) {
      const requestId = nextRequestId();
      const answer = await sendRaw({ path: '/v1/chat/completions', body: chatBody, framing, requestId, pieces: 3, everyMs: 60 });
      expect(answer.status).toBe(200);
      expect((JSON.parse(answer.body) as { object: string }).object).toBe('chat.completion');
      await flushUsage(gateway);
      const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
      expect(rows.map((row) => row.status)).toEqual([200]);
    }
  });
});

describe('KEYWAY_BODY_TIMEOUT_MS', () => {
  const base = { KEYWAY_DATABASE_URL: 'file:./data/keyway.db' };

  test('defaults to 60 s and takes a value in milliseconds', () => {
    expect(loadConfig(base).bodyTimeoutMs).toBe(60_000);
    expect(loadConfig({ ...base, KEYWAY_BODY_TIMEOUT_MS: '15000' }).bodyTimeoutMs).toBe(15_000);
  });

  test('a value that is not a whole number of milliseconds from 100 to 3600000 stops the start, saying so', () => {
    for (const bad of ['abc', '1.5', '0', '99', '3600001', '-1']) {
      expect(() => loadConfig({ ...base, KEYWAY_BODY_TIMEOUT_MS: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, KEYWAY_BODY_TIMEOUT_MS: bad })).toThrow(
        `KEYWAY_BODY_TIMEOUT_MS must be an integer between 100 and 3600000; got ${JSON.stringify(bad)}.`,
      );
    }
  });
});
