// Opt-in CORS (KEYWAY_CORS_ORIGINS): preflights from listed origins are answered for every route
// Keyway serves, answers carry Access-Control-Allow-Origin and expose the spec's headers, credentials
// are never allowed, and without the variable nothing changes (OPTIONS is 405, no CORS header). QA Q1.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { parseCorsOrigins } from '../../core/http/cors.ts';
import { loadConfig } from '../../core/config.ts';
import { addProviderKeys, call, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const APP = 'https://app.example.com';
const LOCAL = 'http://localhost:5173';
const OPENAI_KEY = 'sk-proj-CorsTestKey000000000000000000001';

let simulator: SimulatorHandle;
let gateway: TestGateway;
let closed: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  const env = { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` };
  gateway = await startTestGateway({ probes: false, env: { ...env, KEYWAY_CORS_ORIGINS: `${APP}, ${LOCAL}/` } });
  closed = await startTestGateway({ probes: false, env });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await closed.stop();
  await simulator.stop();
});

function preflight(target: TestGateway, path: string, origin: string, method: string, headers = 'authorization, content-type'): Promise<Response> {
  return fetch(`${target.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
  });
}

const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };

describe('preflights', () => {
  test('an inference route, from a listed origin: 204 with what the SDKs send', async () => {
    const asked = 'authorization, content-type, x-project-tag, x-stainless-os, x-stainless-retry-count';
    const response = await preflight(gateway, '/v1/chat/completions', APP, 'POST', asked);
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(APP);
    expect(response.headers.get('access-control-allow-methods')).toBe('POST');
    expect(response.headers.get('access-control-allow-headers')).toBe(asked);
    expect(response.headers.get('access-control-max-age')).toBe('600');
    expect(response.headers.get('vary')).toBe('Origin');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });

  test("the Anthropic SDK's browser headers on /v1/messages, and management routes", async () => {
    const anthropic = 'x-api-key, anthropic-version, anthropic-dangerous-direct-browser-access, content-type';
    const messages = await preflight(gateway, '/v1/messages', LOCAL, 'POST', anthropic);
    expect(messages.status).toBe(204);
    expect(messages.headers.get('access-control-allow-headers')).toBe(anthropic);
    const routing = await preflight(gateway, '/v1/settings/routing', APP, 'PUT');
    expect(routing.status).toBe(204);
    expect(routing.headers.get('access-control-allow-methods')).toBe('PUT');
    const keys = await preflight(gateway, '/v1/providers/keys/pk_1', APP, 'DELETE');
    expect(keys.status).toBe(204);
  });

  test("headers Keyway does not allow (the dashboard's anti-CSRF header) are left out, so the browser refuses", async () => {
    const response = await preflight(gateway, '/v1/providers', APP, 'GET', 'authorization, x-keyway-csrf');
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-headers')).toBe('authorization');
  });

  test('another origin, a method the path does not take, or no CORS configured: the usual 405, no CORS header', async () => {
    for (const response of [
      await preflight(gateway, '/v1/chat/completions', 'https://evil.example', 'POST'),
      await preflight(gateway, '/v1/chat/completions', APP, 'DELETE'),
      await preflight(closed, '/v1/chat/completions', APP, 'POST'),
    ]) {
      expect(response.status).toBe(405);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
    }
  });
});

describe('answers to a listed origin', () => {
  const exposed = (response: Response) => (response.headers.get('access-control-expose-headers') ?? '').split(', ');

  test('a served chat: the origin allowed and the routing headers readable by the page', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello, { headers: { origin: APP } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe(APP);
    expect(response.headers.get('vary')).toBe('Origin');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    for (const name of ['X-Request-Id', 'X-Provider-Used', 'X-BYOK-Used', 'X-Model-Used', 'X-Key-Id', 'X-Fallback-Attempts', 'X-Keyway-Cost', 'Retry-After'])
      expect(exposed(response)).toContain(name);
    expect(response.headers.get('x-provider-used')).toBe('openai');
    await response.text();
  });

  test('a stream, an error and a management answer carry it too', async () => {
    const stream = await call(gateway, 'POST', '/v1/chat/completions', { ...hello, stream: true }, { headers: { origin: LOCAL } });
    expect(stream.headers.get('access-control-allow-origin')).toBe(LOCAL);
    expect((await readSse(stream)).at(-1)).toBe('[DONE]');
    const refused = await call(gateway, 'POST', '/v1/chat/completions', hello, { key: 'kw_ak_wrong', headers: { origin: APP } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(APP);
    await refused.text();
    const providers = await call(gateway, 'GET', '/v1/providers', undefined, { headers: { origin: APP } });
    expect(providers.status).toBe(200);
    expect(providers.headers.get('access-control-allow-origin')).toBe(APP);
    await providers.text();
  });

  test('no Origin, or another origin: no CORS header, and Vary: Origin for shared caches', async () => {
    for (const headers of [{}, { origin: 'https://evil.example' }] as Array<Record<string, string>>) {
      const response = await call(gateway, 'POST', '/v1/chat/completions', hello, { headers });
      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(response.headers.get('vary')).toBe('Origin');
      await response.text();
    }
  });
});

describe('KEYWAY_CORS_ORIGINS', () => {
  test('origins as browsers send them, or * alone; anything else stops the start', () => {
    expect(parseCorsOrigins(undefined)).toBeUndefined();
    expect(parseCorsOrigins(' ')).toBeUndefined();
    expect(parseCorsOrigins('*')).toBe('*');
    expect(parseCorsOrigins('HTTPS://App.Example.com/, http://localhost:8080')).toEqual(new Set(['https://app.example.com', 'http://localhost:8080']));
    expect(parseCorsOrigins('https://app.example.com:443')).toEqual(new Set(['https://app.example.com']));
    for (const bad of ['*, https://app.example.com', 'app.example.com', 'https://app.example.com/path', 'https://*.example.com', 'ftp://files.example.com'])
      expect(() => loadConfig({ KEYWAY_CORS_ORIGINS: bad })).toThrow('KEYWAY_CORS_ORIGINS');
  });

  test('* answers every origin with *, without Vary', async () => {
    const open = await startTestGateway({ probes: false, env: { KEYWAY_CORS_ORIGINS: '*' } });
    try {
      const response = await preflight(open, '/v1/embeddings', 'https://anywhere.example', 'POST');
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('vary')).toBeNull();
    } finally {
      await open.stop();
    }
  });
});
