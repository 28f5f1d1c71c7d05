import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway, expectSpecError } from '../helpers/gateway.ts';

const FIRST_KEY = 'sk-proj-CanaryErrorsKeyNumberOne000000001';
const SECOND_KEY = 'sk-proj-CanaryErrorsKeyNumberTwo000000002';
let simulator: SimulatorHandle;
let gateway: TestGateway;
let keyIds: string[];

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [FIRST_KEY, SECOND_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MAX_BODY_BYTES: '4096' } });
  const stored = await addProviderKeys(gateway, [
    { name: 'openai', api_key: FIRST_KEY },
    { name: 'openai', api_key: SECOND_KEY },
  ]);
  keyIds = stored.map((key) => String(key.key_id));
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

beforeEach(() => simulator.reset());

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null; attempts?: Array<Record<string, unknown>> };
}

const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
const direct = { ...hello, routing: { strategy: 'direct' } };

const expectError = (response: Response, status: number, code: string): Promise<ErrorBody> => expectSpecError(response, status, code) as Promise<ErrorBody>;

describe('bad input gets a clear spec-shaped error', () => {
  test('malformed JSON is 400 invalid_json', async () => {
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', '{"model": "gpt-4o",'), 400, 'invalid_json');
  });

  test('an empty body is 400', async () => {
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', ''), 400, 'invalid_json');
  });

  test('a body over the limit is 413, declared or streamed', async () => {
    const huge = { ...hello, messages: [{ role: 'user', content: 'x'.repeat(10_000) }] };
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', huge), 413, 'request_too_large');
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(JSON.stringify(huge)));
        controller.close();
      },
    });
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateway.defaultAdminKey}` },
      body: stream,
    });
    await expectError(response, 413, 'request_too_large');
  });

  test('wrong types name the field', async () => {
    const body = await expectError(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: 'hi' }), 400, 'invalid_field');
    expect(body.error.param).toBe('messages');
    const role = await expectError(
      await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'robot', content: 'x' }] }),
      400,
      'invalid_field',
    );
    expect(role.error.param).toBe('messages[0].role');
    const routing = await expectError(
      await call(gateway, 'POST', '/v1/chat/completions', { ...hello, routing: { fallback_reasons: ['sunspots'] } }),
      400,
      'invalid_field',
    );
    expect(routing.error.param).toBe('routing.fallback_reasons');
  });

  test('missing messages is 400 missing_field', async () => {
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o' }), 400, 'missing_field');
  });

  test('an unknown model is 404 with close matches', async () => {
    const body = await expectError(await call(gateway, 'POST', '/v1/chat/completions', { ...hello, model: 'gtp-4o' }), 404, 'model_not_found');
    expect(body.error.message).toContain('gpt-4o');
  });

  test('a model whose provider has no key is 503 no_provider_available', async () => {
    const body = await expectError(
      await call(gateway, 'POST', '/v1/chat/completions', { ...hello, model: 'claude-3-opus-20240229' }),
      503,
      'no_provider_available',
    );
    expect(body.error.message).toContain('anthropic');
  });

  test('an unknown strategy or provider is 400', async () => {
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', { ...hello, routing: { strategy: 'teleport' } }), 400, 'invalid_field');
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', { ...hello, provider: 'nobody' }), 400, 'invalid_field');
  });

  test('no key, a wrong key, and an unknown route', async () => {
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', hello, { key: '' }), 401, 'invalid_api_key');
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', hello, { key: 'kw_ak_not_a_real_key_000000000000000' }), 401, 'invalid_api_key');
    await expectError(await call(gateway, 'GET', '/v1/nothing-here'), 404, 'not_found');
  });
});

describe('a known path under a wrong method is 405 with Allow; an unknown path stays 404', () => {
  const cases: Array<[method: string, path: string, allow: string]> = [
    // Core routes.
    ['GET', '/v1/chat/completions', 'POST'],
    ['DELETE', '/v1/providers', 'GET, HEAD'],
    ['GET', '/v1/providers/keys', 'POST'],
    ['GET', '/v1/providers/keys/pk_nothing', 'DELETE'],
    ['POST', '/v1/models/gpt-4o', 'GET, HEAD'],
    // Plugin routes, with and without a parameter.
    ['PUT', '/v1/teams', 'GET, HEAD, POST'],
    ['PUT', '/v1/teams/team_nothing', 'DELETE, GET, HEAD, PATCH'],
    ['PATCH', '/v1/alerts', 'GET, HEAD, POST'],
    ['PUT', '/v1/alerts/alert_nothing', 'DELETE, GET, HEAD, PATCH'],
    ['POST', '/v1/analytics/byok', 'GET, HEAD'],
    // /v1/messages answers its 405 in Anthropic's shape: test/gateway/messages-api.test.ts.
  ];
  for (const [method, path, allow] of cases) {
    test(`${method} ${path} → 405, Allow: ${allow}`, async () => {
      const response = await call(gateway, method, path, method === 'GET' ? undefined : {});
      expect(response.headers.get('allow')).toBe(allow);
      expect(response.headers.get('x-request-id')).not.toBeNull();
      const body = await expectError(response, 405, 'method_not_allowed');
      expect(body.error.type).toBe('invalid_request_error');
      expect(body.error.message).toBe(`Method ${method} is not allowed on ${path}.`);
    });
  }

  test('no key needed, as for a 404; a trailing slash is the same path', async () => {
    const response = await call(gateway, 'DELETE', '/v1/teams/', undefined, { key: '' });
    expect(response.headers.get('allow')).toBe('GET, HEAD, POST');
    await expectError(response, 405, 'method_not_allowed');
  });

  test('unknown paths stay 404, under any method', async () => {
    for (const [method, path] of [
      ['GET', '/v1/nothing-here'],
      ['DELETE', '/v1/chat/completions/extra'],
      ['PUT', '/v1/teams/team_x/unknown'],
      ['POST', '/v1/providerz'],
    ]) {
      const response = await call(gateway, method as string, path as string, method === 'GET' ? undefined : {});
      expect(response.headers.get('allow')).toBeNull();
      await expectError(response, 404, 'not_found');
    }
  });
});

describe('upstream failures are mapped, never blamed on the caller', () => {
  test('an upstream 401 is 502 provider_key_rejected, not the caller 401', async () => {
    simulator.inject({ kind: 'auth' });
    const response = await call(gateway, 'POST', '/v1/chat/completions', direct);
    const body = await expectError(response, 502, 'provider_key_rejected');
    expect(body.error.message).toContain('openai');
    // The rejected key is out of rotation and flagged; once its provider accepts it again it is back.
    const rejectedKey = body.error.attempts?.[0]?.key_id;
    await Bun.sleep(50);
    expect(gateway.runtime.snapshots.current.keysById.get(String(rejectedKey))?.status).toBe('invalid');
    const listing = (await (await call(gateway, 'GET', '/v1/providers')).json()) as { providers: Array<{ key_id: string; status: string }> };
    expect(listing.providers.find((key) => key.key_id === rejectedKey)?.status).toBe('active');
    await Bun.sleep(50);
    expect(gateway.runtime.snapshots.current.keysById.get(String(rejectedKey))?.status).toBe('active');
  });

  test('429 passes through with Retry-After', async () => {
    simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 7 });
    const response = await call(gateway, 'POST', '/v1/chat/completions', direct);
    await expectError(response, 429, 'upstream_rate_limited');
    expect(response.headers.get('retry-after')).toBe('7');
  });

  test('quota exhaustion is 429 upstream_quota_exceeded', async () => {
    simulator.inject({ kind: 'quota' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', direct), 429, 'upstream_quota_exceeded');
  });

  test('5xx, overload and a reset connection are 502', async () => {
    simulator.inject({ kind: 'server_error' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', direct), 502, 'upstream_error');
    simulator.inject({ kind: 'overloaded' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', direct), 502, 'upstream_error');
    simulator.inject({ kind: 'reset' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', direct), 502, 'upstream_error');
  });

  test('a first-byte timeout is 504', async () => {
    simulator.inject({ kind: 'delay', delayMs: 800 });
    const body = await expectError(
      await call(gateway, 'POST', '/v1/chat/completions', { ...direct, routing: { strategy: 'direct', timeout_ms: 150 } }),
      504,
      'upstream_timeout',
    );
    expect(body.error.message).toContain('150 ms');
  });

  test('a context-length error is a 400 returned as is', async () => {
    simulator.inject({ kind: 'context_length' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', direct), 400, 'context_length_exceeded');
  });

  test('the upstream validation error of a bad parameter is a 400', async () => {
    // presence_penalty: Keyway leaves its range to the provider (temperature and top_p it checks itself).
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', { ...direct, presence_penalty: 5 }), 400, 'upstream_invalid_request');
  });
});

describe('fallback across an account key pool', () => {
  test('direct never falls back, even with a second key', async () => {
    simulator.inject({ kind: 'rate_limit' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', direct), 429, 'upstream_rate_limited');
    expect(simulator.inferenceRequests()).toHaveLength(1);
  });

  test('byok_preferred moves to the next key on a rate limit and says so', async () => {
    simulator.inject({ kind: 'rate_limit' });
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(keyIds).toContain(response.headers.get('x-key-id') as string);
    const [failed, served] = simulator.inferenceRequests();
    expect(failed?.headers.authorization).not.toBe(served?.headers.authorization);
    expect(simulator.inferenceRequests()).toHaveLength(2);
  });

  test('when every key fails the 502 lists each attempt, never a key', async () => {
    simulator.inject({ kind: 'server_error' }, { kind: 'server_error' });
    const body = await expectError(await call(gateway, 'POST', '/v1/chat/completions', hello), 502, 'upstream_error');
    expect(body.error.attempts?.map((attempt) => attempt.key_id).sort()).toEqual([...keyIds].sort());
    const text = JSON.stringify(body);
    expect(text).not.toContain(FIRST_KEY);
    expect(text).not.toContain(SECOND_KEY);
  });

  test('a client error is never retried on another key', async () => {
    simulator.inject({ kind: 'context_length' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', hello), 400, 'context_length_exceeded');
    expect(simulator.inferenceRequests()).toHaveLength(1);
  });

  test('fallback_reasons limit what falls back', async () => {
    simulator.inject({ kind: 'server_error' });
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', { ...hello, routing: { fallback_reasons: ['rate_limit'] } }), 502, 'upstream_error');
    expect(simulator.inferenceRequests()).toHaveLength(1);
  });

  test('a stream falls back while nothing has reached the client yet', async () => {
    simulator.inject({ kind: 'overloaded' });
    const response = await call(gateway, 'POST', '/v1/chat/completions', { ...hello, stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(await response.text()).toContain('[DONE]');
  });
});

describe('client disconnect', () => {
  test('closing the stream cancels the upstream call', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 200 });
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateway.defaultAdminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...hello, stream: true, messages: [{ role: 'user', content: 'a long answer that takes a long time to stream back' }] }),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await Bun.sleep(400);
    await gateway.runtime.usage.flush();
    const rows = await gateway.runtime.store.listUsage('default');
    const row = rows.find((usage) => usage.requestId === response.headers.get('x-request-id'));
    expect(row?.status).toBe(499);
  });
});
