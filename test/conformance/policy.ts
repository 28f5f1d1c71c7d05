// The policy conformance suite: a policy plugin loaded into a real test gateway in front of the
// OpenAI simulator, driven over HTTP with one request it allows and one it refuses. A refusal must
// look like every other Keyway error on each dialect, cost no upstream call and still be booked once.
// A third-party author runs it from a test file of their own:
//
//   describePolicyConformance('my policy', myPolicyPlugin, {
//     allowed: { model: 'gpt-4o-mini', headers: { 'x-team': 'search' } },
//     refused: { model: 'gpt-4o-mini', code: 'permission_denied' },
//   });
//
// A policy that reads the body gives the fields its allowed request needs in `body` (OpenAI-shaped:
// chat and Responses) and `messagesBody` (Anthropic Messages).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_TABLE, isErrorCode } from '../../core/errors.ts';
import { redactSecrets } from '../../core/logger.ts';
import type { Hooks, PluginDefinition, UsageRecord } from '../../core/spec/plugin.ts';
import { anthropicMessagesDialect } from '../../plugins/anthropic-messages/index.ts';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';

export interface PolicyRequest {
  /** The model the body names; a refused model must still resolve, so list unknown ones in `models`. */
  model: string;
  /** The user's message. */
  text?: string;
  headers?: Record<string, string>;
  /**
   * Fields added to the OpenAI-shaped bodies (chat completions and the Responses API), for a policy that
   * reads the body: `{ user: 'alice' }`, `{ metadata: {…} }`. They never replace `model`, the message or `stream`.
   */
  body?: Record<string, unknown>;
  /** The same for the Anthropic Messages body (`{ metadata: { user_id: 'alice' } }`); `body` is not used there. */
  messagesBody?: Record<string, unknown>;
}

export interface PolicyScenario {
  allowed: PolicyRequest;
  /** `code` is the error-table code the policy refuses with. */
  refused: PolicyRequest & { code: string };
  /** The plugin's configuration, as the `plugins` section of KEYWAY_CONFIG gives it. */
  config?: Record<string, unknown>;
  /** Models the simulator serves beyond OpenAI's usual ones. */
  models?: string[];
}

const PROVIDER_KEY = 'sk-proj-PolicyConformanceKey0123456789abcd';
/** Sent along with the refused request: a policy that echoes the request must not echo this. */
const SECRET_HEADER_VALUE = 'sk-ant-api03-PolicyConformanceSecret0123456789';
/** What the throwing copy puts in its error, as a careless hook might. */
const SECRET_IN_FAULT = 'sk-proj-LeakedByAHookMessage0123456789abcd';
const FAULT_HEADER = 'x-conformance-fault';
const REFUSING_STAGES = ['auth', 'keyResolve', 'route', 'call'] as const;
const DEFAULT_TEXT = 'Hello from the policy suite';

interface PolicyHarness {
  gateway: TestGateway;
  simulator: SimulatorHandle;
  configDirectory: string;
}

type Dialect = 'chat' | 'messages' | 'responses';
const PATHS: Record<Dialect, string> = { chat: '/v1/chat/completions', messages: '/v1/messages', responses: '/v1/responses' };

function bodyFor(dialect: Dialect, request: PolicyRequest, stream: boolean): Record<string, unknown> {
  const messages = [{ role: 'user', content: request.text ?? DEFAULT_TEXT }];
  if (dialect === 'responses') return { ...request.body, model: request.model, input: request.text ?? DEFAULT_TEXT, stream };
  return dialect === 'chat'
    ? { ...request.body, model: request.model, messages, stream }
    : { ...request.messagesBody, model: request.model, max_tokens: 64, messages, stream };
}

function send(
  harness: PolicyHarness,
  dialect: Dialect,
  request: PolicyRequest,
  options: { stream?: boolean; headers?: Record<string, string> } = {},
): Promise<Response> {
  return call(harness.gateway, 'POST', PATHS[dialect], bodyFor(dialect, request, options.stream === true), {
    headers: { ...request.headers, ...options.headers },
  });
}

/** Every refusing-stage hook of a copy throws a plain Error when the fault header asks it to. */
function throwingHooks(hooks: Hooks | undefined): Hooks | undefined {
  if (hooks === undefined) return undefined;
  const wrapped: Hooks = {};
  for (const stage of REFUSING_STAGES) {
    const hook = hooks[stage];
    if (hook === undefined) continue;
    wrapped[stage] = (context) => {
      if (context.headers.get(FAULT_HEADER) === 'throw') throw new Error(`token exchange failed for ${SECRET_IN_FAULT}`);
      return hook.call(hooks, context);
    };
  }
  return wrapped;
}

export function throwingCopyName(plugin: PluginDefinition): string {
  return `${plugin.name}-throwing`;
}

/** The plugin under another name, its hooks wrapped; only hooks, as its routes or jobs would clash. */
function throwingCopy(plugin: PluginDefinition): PluginDefinition {
  return {
    ...plugin,
    name: throwingCopyName(plugin),
    hooks: throwingHooks(plugin.hooks),
    async setup(context) {
      const contributions = await plugin.setup?.(context);
      return { hooks: throwingHooks(contributions?.hooks ?? undefined) };
    },
  };
}

async function startPolicyHarness(plugin: PluginDefinition, scenario: PolicyScenario): Promise<PolicyHarness> {
  const simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY], models: [...OPENAI_DEFAULT_MODELS, ...(scenario.models ?? [])] });
  const configDirectory = mkdtempSync(join(tmpdir(), 'keyway-policy-conformance-'));
  const configFile = join(configDirectory, 'keyway.json');
  const config = scenario.config ?? {};
  writeFileSync(configFile, JSON.stringify({ plugins: { [plugin.name]: config, [throwingCopyName(plugin)]: config } }));
  const gateway = await startTestGateway({
    extraPlugins: [
      { definition: plugin, source: 'conformance' },
      { definition: throwingCopy(plugin), source: 'conformance' },
    ],
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_CONFIG: configFile },
  });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
  // Listing the providers waits for the key's model list, so the scenario's own models resolve.
  const providers = await call(gateway, 'GET', '/v1/providers');
  if (providers.status !== 200) throw new Error(`listing providers failed: ${providers.status}`);
  return { gateway, simulator, configDirectory };
}

async function usageRowsOf(harness: PolicyHarness, response: Response): Promise<UsageRecord[]> {
  const requestId = response.headers.get('x-request-id');
  await flushUsage(harness.gateway);
  const rows = await harness.gateway.runtime.store.listUsage('default');
  return rows.filter((row) => row.requestId === requestId);
}

/** Runs a request and answers how many inference calls the simulator received meanwhile. */
async function upstreamCallsDuring<Value>(harness: PolicyHarness, run: () => Promise<Value>): Promise<{ value: Value; upstreamCalls: number }> {
  const before = harness.simulator.inferenceRequests().length;
  const value = await run();
  return { value, upstreamCalls: harness.simulator.inferenceRequests().length - before };
}

interface OpenAIError {
  message: string;
  type: string;
  code: string;
  param: string | null;
}

async function expectBookedOnce(harness: PolicyHarness, response: Response, expected: Pick<UsageRecord, 'status' | 'errorCode' | 'endpoint'>): Promise<void> {
  const rows = await usageRowsOf(harness, response);
  expect(rows.map((row) => ({ status: row.status, errorCode: row.errorCode, endpoint: row.endpoint }))).toEqual([expected]);
}

function expectNoSecret(text: string): void {
  expect(redactSecrets(text)).toBe(text);
  for (const secret of [PROVIDER_KEY, SECRET_HEADER_VALUE, SECRET_IN_FAULT, OPERATOR_KEY]) expect(text).not.toContain(secret);
}

export function describePolicyConformance(name: string, plugin: PluginDefinition, scenario: PolicyScenario): void {
  describe(`policy conformance: ${name}`, () => {
    let current: PolicyHarness | undefined;
    const harness = (): PolicyHarness => {
      if (current === undefined) throw new Error('the policy harness has not started');
      return current;
    };
    beforeAll(async () => {
      current = await startPolicyHarness(plugin, scenario);
    });
    afterAll(async () => {
      await current?.gateway.stop();
      await current?.simulator.stop();
      if (current !== undefined) rmSync(current.configDirectory, { recursive: true, force: true });
    });

    const code = scenario.refused.code;
    const row = isErrorCode(code) ? ERROR_TABLE[code] : undefined;
    const refused = { ...scenario.refused, headers: { ...scenario.refused.headers, 'x-conformance-secret': SECRET_HEADER_VALUE } };

    test('is a policy plugin refusing with a 4xx code of the error table', () => {
      expect(plugin.kind).toBe('policy');
      expect(row?.status).toBeGreaterThanOrEqual(400);
      expect(row?.status).toBeLessThan(500);
    });

    test('the allowed request is served: 200, one upstream call, booked once', async () => {
      const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () => send(harness(), 'chat', scenario.allowed));
      expect(response.status).toBe(200);
      expect(((await response.json()) as { object?: string }).object).toBe('chat.completion');
      expect(upstreamCalls).toBe(1);
      await expectBookedOnce(harness(), response, { status: 200, errorCode: null, endpoint: 'chat' });
    });

    test('the allowed request streams to the end', async () => {
      const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () => send(harness(), 'chat', scenario.allowed, { stream: true }));
      expect(response.status).toBe(200);
      expect((await readSse(response)).at(-1)).toBe('[DONE]');
      expect(upstreamCalls).toBe(1);
    });

    test('the refused request gets the spec error with its table status, never reaches upstream, and is booked once', async () => {
      const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () => send(harness(), 'chat', refused));
      expect(response.status).toBe(row?.status ?? -1);
      expect(response.headers.get('x-request-id')).toBeTruthy();
      const body = (await response.json()) as { error: OpenAIError };
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error).toMatchObject({ type: row?.type, code });
      expect(typeof body.error.message).toBe('string');
      expect(body.error.message.length).toBeGreaterThan(0);
      expect(body.error.param === null || typeof body.error.param === 'string').toBe(true);
      expect(upstreamCalls).toBe(0);
      await expectBookedOnce(harness(), response, { status: row?.status ?? -1, errorCode: code, endpoint: 'chat' });
    });

    test('a streamed refused request is refused the same way, as JSON before any event', async () => {
      const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () => send(harness(), 'chat', refused, { stream: true }));
      expect(response.status).toBe(row?.status ?? -1);
      expect(response.headers.get('content-type')).toContain('application/json');
      expect(((await response.json()) as { error: OpenAIError }).error.code).toBe(code);
      expect(upstreamCalls).toBe(0);
      await expectBookedOnce(harness(), response, { status: row?.status ?? -1, errorCode: code, endpoint: 'chat' });
    });

    test('on /v1/messages the allowed request is served as an Anthropic message', async () => {
      const response = await send(harness(), 'messages', scenario.allowed);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { type?: string }).type).toBe('message');
      await expectBookedOnce(harness(), response, { status: 200, errorCode: null, endpoint: 'messages' });
    });

    for (const stream of [false, true]) {
      test(`on /v1/messages the refusal${stream ? ', streamed,' : ''} comes in the Anthropic error shape, without an upstream call, booked once`, async () => {
        const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () => send(harness(), 'messages', refused, { stream }));
        expect(response.status).toBe(row?.status ?? -1);
        const requestId = response.headers.get('x-request-id') ?? '';
        const body = (await response.json()) as { type: string; error: { type: string; message: string } };
        const descriptor = { status: row?.status ?? -1, type: row?.type ?? '', code, message: body.error?.message ?? '' };
        expect(body).toMatchObject(anthropicMessagesDialect.errorBody(descriptor, requestId) as Record<string, unknown>);
        expect(body.error.message.length).toBeGreaterThan(0);
        expect(upstreamCalls).toBe(0);
        await expectBookedOnce(harness(), response, { status: row?.status ?? -1, errorCode: code, endpoint: 'messages' });
      });
    }

    test('on /v1/responses the allowed request is served as a response', async () => {
      const response = await send(harness(), 'responses', scenario.allowed);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { object?: string }).object).toBe('response');
      await expectBookedOnce(harness(), response, { status: 200, errorCode: null, endpoint: 'responses' });
    });

    for (const stream of [false, true]) {
      test(`on /v1/responses the refusal${stream ? ', streamed,' : ''} comes in the OpenAI error shape, without an upstream call, booked once`, async () => {
        const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () => send(harness(), 'responses', refused, { stream }));
        expect(response.status).toBe(row?.status ?? -1);
        expect(response.headers.get('content-type')).toContain('application/json');
        expect(((await response.json()) as { error: OpenAIError }).error.code).toBe(code);
        expect(upstreamCalls).toBe(0);
        await expectBookedOnce(harness(), response, { status: row?.status ?? -1, errorCode: code, endpoint: 'responses' });
      });
    }

    test('the refusal message shows no secret, even when the request carries one', async () => {
      const response = await send(harness(), 'chat', refused);
      expect(response.status).toBe(row?.status ?? -1);
      expectNoSecret(((await response.json()) as { error: OpenAIError }).error.message);
    });

    test('a hook that throws a plain Error answers 500 plugin_error naming the plugin, with no secret, booked once', async () => {
      const { value: response, upstreamCalls } = await upstreamCallsDuring(harness(), () =>
        send(harness(), 'chat', scenario.allowed, { headers: { [FAULT_HEADER]: 'throw' } }),
      );
      expect(response.status).toBe(500);
      const error = ((await response.json()) as { error: OpenAIError }).error;
      expect(error).toMatchObject({ code: 'plugin_error', type: 'api_error' });
      expect(error.message).toMatch(new RegExp(`^Plugin '${throwingCopyName(plugin)}' failed during (${REFUSING_STAGES.join('|')}): `));
      expectNoSecret(error.message);
      expect(harness().gateway.output.join('\n')).not.toContain(SECRET_IN_FAULT);
      expect(upstreamCalls).toBe(0);
      await expectBookedOnce(harness(), response, { status: 500, errorCode: 'plugin_error', endpoint: 'chat' });
    });
  });
}
