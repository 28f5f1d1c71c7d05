// The lifecycle runner's promise: every authenticated request is booked exactly once, whatever its
// path: answered, streamed, refused by a policy, failed upstream, malformed, cancelled mid-stream,
// embeddings, token counting, the Anthropic dialect, and an out-of-tree provider.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { PluginDefinition, RequestContext, RequestOutcome } from '../../core/spec/plugin.ts';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';

const PROVIDER_KEY = 'sk-sim-account-once-0123456789abcdef';
const ECHO_KEY = 'echo-secret-key-7f3a9c2e1b5d4f6a8c0e';
const ECHO_PLUGIN_PATH = new URL('./echo-provider/index.ts', import.meta.url).pathname;

/** requestId → the outcomes the account hook saw. */
const booked = new Map<string, RequestOutcome[]>();

const bookkeeper: PluginDefinition = {
  name: 'test-bookkeeper',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'policy',
  hooks: {
    route(context: RequestContext) {
      if (context.headers.get('x-test-refuse') === 'yes') throw Object.assign(new Error('refused by the bookkeeper'), { keywayCode: 'model_not_allowed' });
    },
    account(context: RequestContext, outcome: RequestOutcome) {
      booked.set(context.requestId, [...(booked.get(context.requestId) ?? []), outcome]);
    },
  },
};

let simulator: SimulatorHandle;
let gateway: TestGateway;
let configDirectory: string;
let sequence = 0;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY, ECHO_KEY], models: [...OPENAI_DEFAULT_MODELS, 'echo-1'] });
  configDirectory = mkdtempSync(join(tmpdir(), 'keyway-account-once-'));
  const configPath = join(configDirectory, 'keyway.json');
  writeFileSync(configPath, JSON.stringify({ plugins: { 'example-echo-provider': { baseUrl: `${simulator.url}/v1` } } }));
  gateway = await startTestGateway({
    extraPlugins: [{ definition: bookkeeper, source: 'test' }],
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_PLUGINS: ECHO_PLUGIN_PATH, KEYWAY_CONFIG: configPath },
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: PROVIDER_KEY },
    { name: 'echo', api_key: ECHO_KEY },
  ]);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
  rmSync(configDirectory, { recursive: true, force: true });
});

function nextRequestId(): string {
  return `req_once_${++sequence}`;
}

async function send(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ response: Response; requestId: string }> {
  const requestId = nextRequestId();
  const response = await call(gateway, 'POST', path, body, { headers: { 'x-request-id': requestId, ...headers } });
  return { response, requestId };
}

/** The outcomes booked for a request: hook calls and usage rows, after the queue is written. */
async function bookingsOf(requestId: string): Promise<{ hooks: RequestOutcome[]; rows: Array<{ status: number; endpoint: string; streamed: boolean }> }> {
  await flushUsage(gateway);
  const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
  return { hooks: booked.get(requestId) ?? [], rows: rows.map(({ status, endpoint, streamed }) => ({ status, endpoint, streamed })) };
}

async function expectBookedOnce(requestId: string, status: number, endpoint: string, streamed = false): Promise<void> {
  const { hooks, rows } = await bookingsOf(requestId);
  expect(hooks.map((outcome) => outcome.status)).toEqual([status]);
  expect(rows).toEqual([{ status, endpoint, streamed }]);
}

const chatBody = (extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], ...extra });

describe('account runs exactly once', () => {
  test('an answered chat', async () => {
    const { response, requestId } = await send('/v1/chat/completions', chatBody());
    expect(response.status).toBe(200);
    await response.text();
    await expectBookedOnce(requestId, 200, 'chat');
  });

  test('a stream read to the end', async () => {
    const { response, requestId } = await send('/v1/chat/completions', chatBody({ stream: true }));
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('[DONE]');
    await expectBookedOnce(requestId, 200, 'chat', true);
  });

  test('a policy refusal at the route stage', async () => {
    const { response, requestId } = await send('/v1/chat/completions', chatBody(), { 'x-test-refuse': 'yes' });
    expect(response.status).toBe(403);
    await expectBookedOnce(requestId, 403, 'chat');
  });

  test('an upstream failure', async () => {
    simulator.inject({ kind: 'status', status: 400, body: { error: { message: 'bad request', type: 'invalid_request_error', code: null, param: null } } });
    const { response, requestId } = await send('/v1/chat/completions', chatBody());
    expect(response.status).toBe(400);
    await expectBookedOnce(requestId, 400, 'chat');
  });

  test('a malformed body from an authenticated caller', async () => {
    const { response, requestId } = await send('/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": [');
    expect(response.status).toBe(400);
    await expectBookedOnce(requestId, 400, 'chat');
  });

  test('a stream the client cancels', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 50 });
    const abort = new AbortController();
    const requestId = nextRequestId();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify(chatBody({ stream: true })),
      signal: abort.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    abort.abort();
    await reader.cancel().catch(() => undefined);
    // The cancel reaches the gateway asynchronously: wait until it is booked, then check it was once.
    for (let waited = 0; waited < 2_000 && (booked.get(requestId) ?? []).length === 0; waited += 20) await Bun.sleep(20);
    await Bun.sleep(100);
    await expectBookedOnce(requestId, 499, 'chat', true);
  });

  test('a body the client stops sending (partial upload, then close) is 499 client_closed, not a Keyway 500', async () => {
    const requestsOf = async (code: string): Promise<number> => {
      const metrics = await (await call(gateway, 'GET', '/metrics')).text();
      return metrics
        .split('\n')
        .filter((line) => line.startsWith('keyway_requests_total{') && line.includes('endpoint="chat"') && line.includes(`error_type="${code}"`))
        .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    };
    const internalBefore = await requestsOf('internal_error');
    const closedBefore = await requestsOf('client_closed');
    // A declared length the client never reaches, and a chunked body it never ends.
    const framings = ['Content-Length: 500\r\n\r\n{"model":"gpt-4o-mini"', 'Transfer-Encoding: chunked\r\n\r\n16\r\n{"model":"gpt-4o-mini"\r\n'];
    for (const framing of framings) {
      const requestId = nextRequestId();
      const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPERATOR_KEY}\r\nContent-Type: application/json\r\n` +
          `X-Request-Id: ${requestId}\r\n${framing}`,
      );
      await Bun.sleep(100);
      socket.destroy();
      for (let waited = 0; waited < 2_000 && (booked.get(requestId) ?? []).length === 0; waited += 20) await Bun.sleep(20);
      await Bun.sleep(100);
      await expectBookedOnce(requestId, 499, 'chat');
      expect(booked.get(requestId)?.[0]?.error?.code).toBe('client_closed');
      const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
      expect(rows.map((row) => row.errorCode)).toEqual(['client_closed']);
      // Nothing at error (50) or warn (40) level about it: the client went away, Keyway did nothing wrong.
      const lines = gateway.output.filter((line) => line.includes(requestId)).map((line) => JSON.parse(line) as { level: number; msg: string });
      expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    }
    expect(await requestsOf('client_closed')).toBe(closedBefore + framings.length);
    expect(await requestsOf('internal_error')).toBe(internalBefore);
    expect(gateway.output.some((line) => line.includes('request failed unexpectedly'))).toBe(false);
  });

  test('embeddings', async () => {
    const { response, requestId } = await send('/v1/embeddings', { model: 'text-embedding-3-small', input: 'hello' });
    expect(response.status).toBe(200);
    await expectBookedOnce(requestId, 200, 'embeddings');
  });

  test('token counting, refused by a provider that does not count', async () => {
    const { response, requestId } = await send('/v1/messages/count_tokens', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { type: string }).type).toBe('error');
    await expectBookedOnce(requestId, 400, 'count_tokens');
  });

  test('the Anthropic Messages dialect', async () => {
    const { response, requestId } = await send('/v1/messages', { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] });
    expect(response.status).toBe(200);
    await expectBookedOnce(requestId, 200, 'messages');
  });

  test('a wrong gateway key is answered but has no account to book to', async () => {
    const requestId = nextRequestId();
    const response = await call(gateway, 'POST', '/v1/chat/completions', chatBody(), {
      key: 'kw_ak_not-a-real-key-000000',
      headers: { 'x-request-id': requestId },
    });
    expect(response.status).toBe(401);
    const { hooks, rows } = await bookingsOf(requestId);
    expect({ hooks: hooks.length, rows: rows.length }).toEqual({ hooks: 0, rows: 0 });
  });
});

describe('the outcome log line', () => {
  test('a failed request logs ids, status and timings, never a request header', async () => {
    simulator.inject({ kind: 'status', status: 500, body: { error: { message: 'boom', type: 'server_error', code: null, param: null } } });
    const canaries = {
      'proxy-authorization': 'Basic canary-proxy-credential-5e1d',
      'api-key': 'canary-azure-style-key-9c4b',
      cookie: 'session=canary-cookie-77aa',
    };
    const { response, requestId } = await send('/v1/chat/completions', chatBody(), canaries);
    expect(response.status).toBeGreaterThanOrEqual(500);
    await expectBookedOnce(requestId, response.status, 'chat');
    const lines = gateway.output.filter((line) => line.includes(requestId));
    expect(lines.some((line) => line.includes('request finished'))).toBe(true);
    for (const value of Object.values(canaries)) expect(gateway.output.join('\n')).not.toContain(value.split(' ').at(-1) as string);
  });
});

describe('an out-of-tree provider built only from services', () => {
  test('answers, streams and is booked', async () => {
    const plain = await send('/v1/chat/completions', chatBody({ model: 'echo-1' }));
    expect(plain.response.status).toBe(200);
    expect(plain.response.headers.get('x-provider-used')).toBe('echo');
    await expectBookedOnce(plain.requestId, 200, 'chat');
    const streamed = await send('/v1/chat/completions', chatBody({ model: 'echo-1', stream: true }));
    expect(await streamed.response.text()).toContain('[DONE]');
    await expectBookedOnce(streamed.requestId, 200, 'chat', true);
  });

  test('its failure keeps its reason for fallback, and its key never reaches the client or the log', async () => {
    simulator.inject({ kind: 'status', status: 429, body: { error: { message: 'slow down', type: 'rate_limit_error', code: null, param: null } } });
    const { response, requestId } = await send('/v1/chat/completions', chatBody({ model: 'echo-1' }));
    const text = await response.text();
    expect(response.status).toBe(429);
    expect(JSON.parse(text).error.code).toBe('upstream_rate_limited');
    expect(text).not.toContain(ECHO_KEY);
    await expectBookedOnce(requestId, 429, 'chat');
    expect(gateway.output.join('\n')).not.toContain(ECHO_KEY);
  });
});
