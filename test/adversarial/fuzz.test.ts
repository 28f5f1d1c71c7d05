// Property-based fuzzing of every JSON body and the headers Keyway reads, against a running gateway:
// whatever arrives, the answer is the spec's shape, never a 500, never a canary secret; the gateway
// keeps serving; and no client input changes a provider's health.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { addProviderKeys, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const CANARY_PROVIDER_KEY = 'sk-proj-CanaryFuzzProviderKey00000000000001';
const RUNS = Number(process.env.KEYWAY_FUZZ_RUNS ?? 60);

let simulator: SimulatorHandle;
let gateway: TestGateway;
let adminKey: string;
/** Management fuzzing changes settings and adds keys: it runs in an account of its own. */
let managementKey: string;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [CANARY_PROVIDER_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` }, logLevel: 'info' });
  adminKey = gateway.defaultAdminKey;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: CANARY_PROVIDER_KEY }]);
  const created = await fetch(`${gateway.url}/v1/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'fuzz-management' }),
  });
  managementKey = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

interface Target {
  method: string;
  path: string;
  /** A valid body to mutate, so fuzzing reaches past the first check. */
  valid: Record<string, unknown>;
  dialect: 'openai' | 'anthropic';
  management?: boolean;
}

const chatMessage = { role: 'user', content: 'Hello' };
const TARGETS: Target[] = [
  { method: 'POST', path: '/v1/chat/completions', valid: { model: 'gpt-4o-mini', messages: [chatMessage] }, dialect: 'openai' },
  { method: 'POST', path: '/v1/messages', valid: { model: 'gpt-4o-mini', max_tokens: 20, messages: [chatMessage] }, dialect: 'anthropic' },
  { method: 'POST', path: '/v1/messages/count_tokens', valid: { model: 'gpt-4o-mini', messages: [chatMessage] }, dialect: 'anthropic' },
  { method: 'POST', path: '/v1/embeddings', valid: { model: 'text-embedding-3-small', input: 'hello' }, dialect: 'openai' },
  {
    method: 'POST',
    path: '/v1/providers/keys',
    valid: { providers: [{ name: 'openai', api_key: 'sk-proj-FuzzNeverStored000000000000000' }] },
    dialect: 'openai',
    management: true,
  },
  { method: 'POST', path: '/v1/keys', valid: { name: 'fuzz', role: 'viewer' }, dialect: 'openai', management: true },
  { method: 'PUT', path: '/v1/settings/routing', valid: { routing: { strategy: 'byok_preferred' } }, dialect: 'openai', management: true },
  { method: 'POST', path: '/v1/providers/health-check', valid: { auto_disable: false, health_threshold: 90 }, dialect: 'openai', management: true },
  { method: 'PUT', path: '/v1/settings/model-classes', valid: { classes: { fuzz: { members: ['x'] } } }, dialect: 'openai', management: true },
  {
    method: 'POST',
    path: '/v1/alerts',
    valid: { alerts: [{ type: 'byok_cost_threshold', provider: 'openai', threshold: 100, period: 'daily', notify: ['alerts@company.com'] }] },
    dialect: 'openai',
    management: true,
  },
];

/** Any JSON value, biased towards the shapes validators meet: objects, arrays, odd numbers, long strings. */
const anyJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ model: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), messages: fc.jsonValue({ maxDepth: 3 }) }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -1, 1e308, '', '\u0000', '🙂'.repeat(100)),
);

/** A valid body with one field replaced by anything, or one field removed. */
function mutated(valid: Record<string, unknown>) {
  const fields = Object.keys(valid);
  return fc.oneof(
    fc.record({ field: fc.constantFrom(...fields), value: anyJson }).map(({ field, value }) => ({ ...valid, [field]: value })),
    fc.constantFrom(...fields).map((field) => {
      const { [field]: _removed, ...rest } = valid;
      return rest;
    }),
    fc.record({ extra: fc.string({ maxLength: 20 }), value: anyJson }).map(({ extra, value }) => ({ ...valid, [extra]: value })),
  );
}

/** Raw text: broken JSON, truncated valid JSON, non-JSON. */
function rawBodies(valid: Record<string, unknown>) {
  const text = JSON.stringify(valid);
  return fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.nat({ max: text.length }).map((cut) => text.slice(0, cut)),
    fc.constantFrom('', 'null', '[]', '{}', '{"a":', '\u0000\u0001', `${'['.repeat(5000)}${']'.repeat(5000)}`),
  );
}

const headerValue = fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('false', 'true', '', ' ', 'a'.repeat(400)));
/** Header values must be ISO-8859-1 for fetch to send them; others are the client's problem, not ours. */
const sendable = (value: string) => /^[\x20-\x7e]*$/.test(value);
const fuzzHeaders = fc
  .record(
    {
      'x-project-tag': headerValue,
      'x-team-id': headerValue,
      'x-session-id': headerValue,
      'x-use-byok': headerValue,
      'x-request-id': headerValue,
      'anthropic-beta': headerValue,
      'x-provider-key': headerValue,
      'x-provider': fc.oneof(headerValue, fc.constantFrom('openai', 'anthropic')),
    },
    { requiredKeys: [] },
  )
  .map((headers) => Object.fromEntries(Object.entries(headers).filter(([, value]) => sendable(value))));

const keyChoice = fc.constantFrom<'admin' | 'operator' | 'none' | 'garbage'>('admin', 'operator', 'none', 'garbage');

async function send(target: Target, body: string, headers: Record<string, string>, key: 'admin' | 'operator' | 'none' | 'garbage'): Promise<Response> {
  const all: Record<string, string> = { 'content-type': 'application/json', ...headers };
  if (key === 'admin') all.authorization = `Bearer ${target.management ? managementKey : adminKey}`;
  // The operator acts on the default account: only inference is fuzzed with its key.
  if (key === 'operator') all.authorization = `Bearer ${target.management ? managementKey : OPERATOR_KEY}`;
  if (key === 'garbage') all.authorization = 'Bearer kw_ak_garbage';
  return fetch(`${gateway.url}${target.path}`, { method: target.method, headers: all, body });
}

/** The spec's error shape in the target's dialect, never a 500, never a secret. */
async function expectSpecShaped(target: Target, response: Response): Promise<void> {
  const text = await response.text();
  for (const secret of [CANARY_PROVIDER_KEY, OPERATOR_KEY, adminKey, managementKey]) expect(text).not.toContain(secret);
  expect(response.status).not.toBe(500);
  expect(response.headers.get('x-request-id')).toBeTruthy();
  if (response.status < 400 || response.headers.get('content-type')?.includes('text/event-stream')) return;
  const body = JSON.parse(text) as Record<string, unknown>;
  const error = body.error as Record<string, unknown> | undefined;
  expect(typeof error?.message).toBe('string');
  expect(typeof error?.type).toBe('string');
  if (target.dialect === 'anthropic' && !target.path.endsWith('/keys')) expect(body.type).toBe('error');
  else expect(typeof error?.code).toBe('string');
}

describe.each(TARGETS.map((target) => [`${target.method} ${target.path}`, target] as const))('fuzzing %s', (_name, target) => {
  test('mutated JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(mutated(target.valid), fuzzHeaders, keyChoice, async (body, headers, key) => {
        await expectSpecShaped(target, await send(target, JSON.stringify(body), headers, key));
      }),
      { numRuns: RUNS },
    );
  });

  test('raw and broken bodies', async () => {
    await fc.assert(
      fc.asyncProperty(rawBodies(target.valid), fuzzHeaders, async (body, headers) => {
        await expectSpecShaped(target, await send(target, body, headers, 'admin'));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('after the fuzzing', () => {
  test('the gateway still serves, no secret reached a log line, and no provider was marked unhealthy by clients', async () => {
    const chat = await send(TARGETS[0] as Target, JSON.stringify((TARGETS[0] as Target).valid), {}, 'admin');
    expect(chat.status).toBe(200);
    // Log lines only: the first-start announcement prints the admin key once, on purpose.
    const log = gateway.output.filter((line) => line.startsWith('{')).join('\n');
    for (const secret of [CANARY_PROVIDER_KEY, OPERATOR_KEY, adminKey]) expect(log).not.toContain(secret);
    const health = (await (await fetch(`${gateway.url}/v1/providers/health`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as {
      providers: Array<{ name: string; status: string; success_rate: number }>;
    };
    for (const provider of health.providers)
      expect({ name: provider.name, status: provider.status, success_rate: provider.success_rate }).toEqual({
        name: provider.name,
        status: 'healthy',
        success_rate: 100,
      });
  });
});
