// Input limits and internal errors, over HTTP: deep JSON is refused at the door, a body of any size
// over the limit gets the spec's 413, an adapter's own bug is a 500 internal_error that never counts
// against the provider's health, validation messages state the rule, the OpenAPI document lists
// every route with its body schema, and a new provider key says `verifying` until it is checked.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { PluginSource } from '../../core/registry.ts';
import type { CallContext, ChatRequest, PluginDefinition } from '../../core/spec/plugin.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway, expectSpecError } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const OPENAI_KEY = 'sk-proj-InputLimitsKeyNumberOne00000000001';
const THROWING_KEY = 'thr-InputLimitsThrowingKey0000000000001';
const THROWING = 'throwing';

/** The "upstream" a throwing adapter would have called: counted, so a test can say it was never reached. */
let throwingCalls = 0;

/** A provider whose translation code has a bug: it throws a TypeError before any upstream call. */
const throwingProvider: PluginDefinition = {
  name: 'test-throwing-provider',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'provider',
  setup: () => ({
    provider: {
      name: THROWING,
      defaultBaseUrl: 'http://127.0.0.1:9',
      modelPatterns: [/^throw-/],
      modelClasses: { flagship: { model: 'throw-flagship' } },
      async chat(request: ChatRequest, _context: CallContext) {
        const settings = (request as unknown as { missing?: { deeper: string } }).missing;
        return settings!.deeper as never;
      },
      async chatStream() {
        throw new RangeError('Maximum call stack size exceeded');
      },
      async listModels() {
        return ['throw-1', 'throw-flagship'];
      },
    },
  }),
};

const extraPlugins: PluginSource[] = [{ definition: throwingProvider, source: 'test' }];

let simulator: SimulatorHandle;
let gateway: TestGateway;

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null; attempts?: Array<Record<string, unknown>> };
}

interface HealthBody {
  providers: Array<{
    name: string;
    status: string;
    success_rate: number;
    issues: string[];
    keys: Array<{ key_id: string; status: string; success_rate: number }>;
  }>;
}

const expectError = (response: Response, status: number, code: string): Promise<ErrorBody> => expectSpecError(response, status, code) as Promise<ErrorBody>;

async function health(): Promise<HealthBody['providers']> {
  const response = await call(gateway, 'GET', '/v1/providers/health');
  expect(response.status).toBe(200);
  return ((await response.json()) as HealthBody).providers;
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  gateway = await startTestGateway({ extraPlugins, probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: THROWING, api_key: THROWING_KEY },
  ]);
  // Listing waits for each key's models, so bare model names resolve.
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

beforeEach(() => {
  simulator.reset();
  throwingCalls = 0;
});

const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], routing: { strategy: 'direct' } };

describe('JSON nesting is limited at the door', () => {
  test('a 200 KB body nested 100k levels deep is 400 invalid_json, fast, with no upstream call and no health change', async () => {
    const before = await health();
    const deep = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"metadata":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const started = performance.now();
    const body = await expectError(await call(gateway, 'POST', '/v1/chat/completions', deep), 400, 'invalid_json');
    const elapsedMs = performance.now() - started;
    expect(body.error.message).toBe('The request body is not valid JSON: nested deeper than 64 levels');
    expect(elapsedMs).toBeLessThan(250);
    expect(simulator.inferenceRequests()).toHaveLength(0);
    expect(await health()).toEqual(before);
  });

  test('ten deep bodies from a developer key leave the provider healthy', async () => {
    const created = await call(gateway, 'POST', '/v1/keys', { name: 'dev', role: 'developer' });
    const developerKey = String(((await created.json()) as { api_key: string }).api_key);
    const deep = `{"model":"gpt-4o","messages":[{"role":"user","content":${'['.repeat(50_000)}${']'.repeat(50_000)}}]}`;
    for (let index = 0; index < 12; index++)
      await expectError(await call(gateway, 'POST', '/v1/chat/completions', deep, { key: developerKey }), 400, 'invalid_json');
    const openai = (await health()).find((entry) => entry.name === 'openai');
    expect(openai?.status).toBe('healthy');
    expect(openai?.issues).toEqual([]);
  });

  test('nesting within the limit passes: a tool schema 20 levels deep reaches the provider', async () => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let level = 0; level < 20; level++) schema = { type: 'object', properties: { inner: schema } };
    const tools = [{ type: 'function', function: { name: 'deep', description: 'nested', parameters: schema } }];
    const response = await call(gateway, 'POST', '/v1/chat/completions', { ...hello, tools });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  });

  test('management routes refuse deep bodies the same way', async () => {
    const deep = `{"name":${'['.repeat(1000)}${']'.repeat(1000)}}`;
    await expectError(await call(gateway, 'POST', '/v1/keys', deep), 400, 'invalid_json');
  });
});

describe("an adapter's own bug is Keyway's internal error, not the provider's failure", () => {
  test('a TypeError in translation answers 500 internal_error, and health stays unchanged', async () => {
    const before = (await health()).find((entry) => entry.name === THROWING);
    for (let index = 0; index < 12; index++) {
      const body = await expectError(
        await call(gateway, 'POST', '/v1/chat/completions', { model: 'throw-1', messages: [{ role: 'user', content: 'hi' }] }),
        500,
        'internal_error',
      );
      expect(body.error.type).toBe('api_error');
      expect(body.error.message).toContain('TypeError');
      expect(body.error.message).not.toContain(THROWING_KEY);
    }
    const after = (await health()).find((entry) => entry.name === THROWING);
    expect(after).toEqual(before);
    expect(after?.status).toBe('healthy');
    expect(after?.keys.every((key) => key.success_rate === 100)).toBe(true);
    // The stack is logged for the operator, the key never.
    const logged = gateway.output.filter((line) => line.includes('provider adapter failed inside Keyway'));
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.some((line) => line.includes('TypeError'))).toBe(true);
    expect(logged.some((line) => line.includes(THROWING_KEY))).toBe(false);
  });

  test('a stack overflow when opening a stream is 500 internal_error too', async () => {
    const body = await expectError(
      await call(gateway, 'POST', '/v1/chat/completions', { model: 'throw-1', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      500,
      'internal_error',
    );
    expect(body.error.message).toContain('RangeError');
    expect((await health()).find((entry) => entry.name === THROWING)?.status).toBe('healthy');
  });

  test('the request falls back to another provider, and the broken adapter is not blamed', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', {
      model: 'throw-flagship',
      messages: [{ role: 'user', content: 'hi' }],
      routing: { strategy: 'fallback_chain', provider_order: [THROWING, 'openai'] },
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(simulator.inferenceRequests()).toHaveLength(1);
    expect((await health()).find((entry) => entry.name === THROWING)?.status).toBe('healthy');
  });

  test('without server_error among the fallback reasons, the internal error is the answer', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', {
      model: 'throw-flagship',
      messages: [{ role: 'user', content: 'hi' }],
      routing: { strategy: 'fallback_chain', provider_order: [THROWING, 'openai'], fallback_reasons: ['rate_limit'] },
    });
    await expectError(response, 500, 'internal_error');
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });
});

describe('every oversized body gets the spec 413', () => {
  const FORTY_MIB = 40 * 1024 * 1024;

  test('a 40 MiB body with its length declared', async () => {
    const body = await expectError(await call(gateway, 'POST', '/v1/chat/completions', 'x'.repeat(FORTY_MIB)), 413, 'request_too_large');
    expect(body.error.type).toBe('request_too_large');
    expect(body.error.message).toBe(`The request body is ${FORTY_MIB} bytes; the limit is ${16 * 1024 * 1024} bytes.`);
  });

  test('a 40 MiB body streamed without a length', async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 40) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${process.env.KEYWAY_TEST_NEVER ?? 'kw_op_TestOperatorKey0123456789abcdefghij'}`, 'content-type': 'application/json' },
      body: stream,
    });
    const body = await expectError(response, 413, 'request_too_large');
    expect(body.error.message).toContain('more than 16777216');
  });

  test('a 40 MiB body on a management route', async () => {
    await expectError(await call(gateway, 'POST', '/v1/providers/keys', 'x'.repeat(FORTY_MIB)), 413, 'request_too_large');
  });
});

// Bun's HTTP parser answers headers over its limit (16 KiB) before any of Keyway's code runs: no hook
// or option of Bun.serve reaches it. docs/api.md documents this exception; this test notices if Bun
// ever lets Keyway answer instead, so the document can be revised.
describe('request headers over 16 KiB (a documented limit)', () => {
  test("are refused by Bun's own bare 431, unbooked", async () => {
    // The earlier tests' rows are written first, so the count can only move by what this request books.
    await gateway.runtime.usage.flush();
    const before = (await gateway.runtime.store.listUsage('default')).length;
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [] },
      { headers: { 'x-project-tag': 'a'.repeat(20_000) } },
    );
    expect(response.status).toBe(431);
    expect(await response.text()).toBe('');
    expect(response.headers.get('x-request-id')).toBeNull();
    await gateway.runtime.usage.flush();
    expect((await gateway.runtime.store.listUsage('default')).length).toBe(before);
  });
});

describe('validation messages state the rule', () => {
  test('a provider key with a space', async () => {
    const body = await expectError(
      await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: 'sk-has a space' }] }),
      400,
      'invalid_field',
    );
    expect(body.error.param).toBe('providers[0].api_key');
    expect(body.error.message).toBe("Invalid value for 'providers[0].api_key': must be printable ASCII without spaces: provider keys have no other characters");
  });

  test('a role outside the enum lists the allowed values', async () => {
    const body = await expectError(await call(gateway, 'POST', '/v1/keys', { name: 'x', role: 'superuser' }), 400, 'invalid_field');
    expect(body.error.message).toBe("Invalid value for 'role': expected one of: admin, developer, viewer");
  });

  test('a number out of range states the bounds', async () => {
    const body = await expectError(await call(gateway, 'POST', '/v1/providers/health-check', { health_threshold: 150 }), 400, 'invalid_field');
    expect(body.error.message).toBe("Invalid value for 'health_threshold': must be a number from 0 to 100");
    const weight = await expectError(
      await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: 'sk-x', weight: 0 }] }),
      400,
      'invalid_field',
    );
    expect(weight.error.message).toBe("Invalid value for 'providers[0].weight': must be a number greater than 0 and at most 1000");
  });

  test('a bad base_url says what a base URL must be', async () => {
    const body = await expectError(
      await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: 'sk-x', settings: { base_url: 'ftp://x' } }] }),
      400,
      'invalid_field',
    );
    expect(body.error.message).toBe("Invalid value for 'providers[0].settings.base_url': must be an http:// or https:// URL without whitespace");
  });
});

describe('a number must be finite: JSON.parse reads 1e400 as Infinity, which stored JSON would hold as null', () => {
  const raw = (method: string, path: string, text: string) => call(gateway, method, path, text);

  test('management bodies refuse it, naming the field', async () => {
    for (const [path, text, field] of [
      ['/v1/settings/routing', '{"routing":{"strategy":"cost_optimized","cost_weights":{"openai":1e400}}}', 'routing.cost_weights.openai'],
      ['/v1/providers/health-check', '{"health_threshold":1e400}', 'health_threshold'],
      ['/v1/platform/settings', '{"platform_markup_percent":1e400}', 'platform_markup_percent'],
    ] as const) {
      const method = path === '/v1/providers/health-check' ? 'POST' : 'PUT';
      const body = await expectError(await raw(method, path, text), 400, 'invalid_field');
      expect(body.error.param).toBe(field);
    }
    const key = await expectError(
      await raw('POST', '/v1/providers/keys', '{"providers":[{"name":"openai","api_key":"sk-x","weight":1e400}]}'),
      400,
      'invalid_field',
    );
    expect(key.error.param).toBe('providers[0].weight');
  });

  test('inference bodies refuse it before any upstream call, in every dialect', async () => {
    for (const [path, text, field] of [
      ['/v1/chat/completions', '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1e400}', 'temperature'],
      ['/v1/messages', '{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"temperature":1e400}', 'temperature'],
      ['/v1/messages', '{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"top_p":-1e400}', 'top_p'],
      ['/v1/responses', '{"model":"gpt-4o","input":"hi","max_output_tokens":1e400}', 'max_output_tokens'],
    ] as const) {
      const response = await raw('POST', path, text);
      expect(response.status).toBe(400);
      // The Messages dialect's error shape has no param: the message names the field.
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(`'${field}'`);
    }
    expect(simulator.inferenceRequests()).toEqual([]);
  });
});

describe('OpenAPI', () => {
  interface OpenApiDocument {
    openapi: string;
    paths: Record<
      string,
      Record<string, { summary?: string; requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> } }>
    >;
  }

  test('GET /openapi/json lists the routes with their request body schemas', async () => {
    const response = await fetch(`${gateway.url}/openapi/json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    const document = (await response.json()) as OpenApiDocument;
    expect(document.openapi).toStartWith('3.1');
    const bodyOf = (path: string) => document.paths[path]?.post?.requestBody?.content['application/json']?.schema;
    expect(Object.keys(bodyOf('/v1/chat/completions')?.properties ?? {})).toEqual(expect.arrayContaining(['model', 'messages', 'stream', 'tools', 'routing']));
    expect(Object.keys(bodyOf('/v1/messages')?.properties ?? {})).toEqual(expect.arrayContaining(['model', 'max_tokens', 'messages', 'system']));
    expect(Object.keys(bodyOf('/v1/providers/keys')?.properties ?? {})).toEqual(['providers', 'encryption']);
    // Plugin routes appear with their summary; every route has one.
    expect(document.paths['/v1/messages']?.post?.summary).toBe('Anthropic Messages API');
    for (const [path, item] of Object.entries(document.paths))
      for (const [method, operation] of Object.entries(item)) expect(`${method} ${path}: ${operation.summary ?? ''}`).not.toEndWith(': ');
    expect(document.paths['/openapi/json']).toBeUndefined();
  });

  test('GET /openapi is a page with no asset from elsewhere', async () => {
    const response = await fetch(`${gateway.url}/openapi`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const page = await response.text();
    expect(page).toContain('openapi/json');
    expect(page).not.toMatch(/<(script|link)[^>]+(src|href)="(https?:)?\/\//);
  });

  test('bodies still reach Keyway unparsed: malformed JSON is invalid_json, not the framework error', async () => {
    await expectError(await call(gateway, 'POST', '/v1/chat/completions', '{"model": "gpt-4o",'), 400, 'invalid_json');
    await expectError(await call(gateway, 'POST', '/v1/providers/keys', '{"providers": ['), 400, 'invalid_json');
    // /v1/messages answers in Anthropic's shape.
    const messages = await call(gateway, 'POST', '/v1/messages', 'not json');
    expect(messages.status).toBe(400);
    const body = (await messages.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.message).toStartWith('The request body is not valid JSON');
  });
});

describe('a new provider key says verifying until it is checked', () => {
  test('verifying in the creation answer, active once listed', async () => {
    const otherKey = 'sk-proj-InputLimitsKeyNumberTwo00000000002';
    simulator.state.apiKeys.add(otherKey);
    const [stored] = await addProviderKeys(gateway, [{ name: 'openai', api_key: otherKey }]);
    expect(stored?.status).toBe('verifying');
    expect(stored?.models_checked_at).toBeNull();
    // Routing uses it at once: the stored status is active.
    expect(gateway.runtime.snapshots.current.keysById.get(String(stored?.key_id))?.status).toBe('active');
    const listing = (await (await call(gateway, 'GET', '/v1/providers')).json()) as { providers: Array<{ key_id: string; status: string }> };
    expect(listing.providers.find((key) => key.key_id === stored?.key_id)?.status).toBe('active');
  });
});
