// The dialect conformance suite: an inbound API (its operations, its route, its error shape) driven
// over HTTP through a real test gateway in front of the OpenAI simulator. Answers, streams and
// errors must come back in the dialect's own shape, and every request must be booked once under
// the operation's endpoint. A third-party author runs it from a test file of their own:
//
//   describeDialectConformance('my dialect', {
//     plugin: myDialectPlugin, operations: [myChatOperation], path: '/v1/my-chat',
//     buildRequest, readAnswerText, readStreamText,
//   });

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ERROR_TABLE, type ErrorCode } from '../../core/errors.ts';
import type { ChatOperation, Dialect, InboundOperation, PluginDefinition, UsageRecord } from '../../core/spec/plugin.ts';
import type { ErrorDescriptor } from '../../core/spec/vocabulary.ts';
import { builtinPluginDefinitions } from '../../plugins/builtin.ts';
import { addProviderKeys, call, flushUsage, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

export interface DialectRequest {
  body: unknown;
  headers?: Record<string, string>;
}

export interface DialectConformanceOptions {
  /** The plugin contributing the dialect and its route; loaded into the gateway unless built in. */
  plugin?: PluginDefinition;
  /** The dialect, when the core serves it itself; otherwise the operations' dialect. */
  dialect?: Dialect;
  /** The dialect's operations; the chat operation among them is the one served at `path`. */
  operations: readonly InboundOperation[];
  path: string;
  /** A request in the dialect asking `model` for an answer to the user message `text`. */
  buildRequest(input: { model: string; text: string; stream: boolean }): DialectRequest;
  /** The answer's text; throws when the body is not the dialect's answer shape. */
  readAnswerText(body: unknown): string;
  /** A stream's text from its SSE `data:` payloads in order; throws when they are not the dialect's. */
  readStreamText(payloads: string[]): string;
}

const PROVIDER_KEY = 'sk-proj-DialectConformanceKey0123456789abcd';
const MODEL = 'gpt-4o-mini';
const UNKNOWN_MODEL = 'conformance-unknown-model';
const INVALID_GATEWAY_KEY = 'kw_ak_NotAKeyTheGatewayIssued0123456789';

// Marks for the parts of an error body that vary by request: the rest must match errorBody's output.
const MESSAGE_MARK = '\u0001message';
const PARAM_MARK = '\u0001param';
const REQUEST_ID_MARK = '\u0001request-id';

interface DialectHarness {
  gateway: TestGateway;
  simulator: SimulatorHandle;
}

/** What the OpenAI simulator answers to a user message: the gateway must hand it on unchanged. */
function expectedAnswer(text: string): string {
  return `Echo: ${text}`;
}

function chatOperationOf(options: DialectConformanceOptions): ChatOperation | undefined {
  return options.operations.find((operation): operation is ChatOperation => operation.kind === 'chat');
}

function dialectOf(options: DialectConformanceOptions): Dialect | undefined {
  return options.dialect ?? options.operations[0]?.dialect;
}

async function startDialectHarness(options: DialectConformanceOptions): Promise<DialectHarness> {
  const simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  const plugin = options.plugin;
  // A built-in dialect is already loaded; loading it twice would register its route twice.
  const builtIn = plugin === undefined || builtinPluginDefinitions.some((definition) => definition.name === plugin.name);
  const gateway = await startTestGateway({
    extraPlugins: builtIn ? [] : [{ definition: plugin, source: 'conformance' }],
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` },
  });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
  return { gateway, simulator };
}

function send(
  harness: DialectHarness,
  options: DialectConformanceOptions,
  input: { model?: string; text: string; stream: boolean; key?: string },
): Promise<Response> {
  const request = options.buildRequest({ model: input.model ?? MODEL, text: input.text, stream: input.stream });
  return call(harness.gateway, 'POST', options.path, request.body, { headers: request.headers, key: input.key });
}

async function usageRowsOf(harness: DialectHarness, requestId: string | null): Promise<UsageRecord[]> {
  await flushUsage(harness.gateway);
  return (await harness.gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
}

async function expectBookedOnce(harness: DialectHarness, response: Response, expected: Pick<UsageRecord, 'endpoint' | 'status' | 'streamed'>): Promise<void> {
  const rows = await usageRowsOf(harness, response.headers.get('x-request-id'));
  expect(rows.map((row) => ({ endpoint: row.endpoint, status: row.status, streamed: row.streamed }))).toEqual([expected]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Where `actual` departs from `template` (errorBody's output with marks for the varying parts).
 * Keys the template lacks are allowed: dialects add a descriptor's documented extras.
 */
function departures(template: unknown, actual: unknown, requestId: string, path = '$'): string[] {
  if (template === MESSAGE_MARK) return typeof actual === 'string' && actual.length > 0 ? [] : [`${path}: expected a message, got ${JSON.stringify(actual)}`];
  if (template === PARAM_MARK)
    return actual === null || actual === undefined || typeof actual === 'string' ? [] : [`${path}: expected a param, got ${JSON.stringify(actual)}`];
  if (template === REQUEST_ID_MARK) return actual === requestId ? [] : [`${path}: expected the request id ${requestId}, got ${JSON.stringify(actual)}`];
  if (isRecord(template)) {
    if (!isRecord(actual)) return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    return Object.entries(template).flatMap(([key, value]) => departures(value, actual[key], requestId, `${path}.${key}`));
  }
  return Bun.deepEquals(template, actual) ? [] : [`${path}: expected ${JSON.stringify(template)}, got ${JSON.stringify(actual)}`];
}

async function expectErrorInDialectShape(dialect: Dialect | undefined, response: Response, code: ErrorCode): Promise<void> {
  const row = ERROR_TABLE[code];
  expect(response.status).toBe(row.status);
  const requestId = response.headers.get('x-request-id') ?? '';
  expect(requestId).not.toBe('');
  expect(response.headers.get('content-type')).toContain('application/json');
  const template = dialect?.errorBody({ status: row.status, type: row.type, code, message: MESSAGE_MARK, param: PARAM_MARK }, REQUEST_ID_MARK);
  expect(departures(template, await response.json(), requestId)).toEqual([]);
}

/** Every leaf of a JSON value with its path. */
function leaves(value: unknown, path = '$'): Array<[string, unknown]> {
  if (Array.isArray(value)) return value.flatMap((item, index) => leaves(item, `${path}[${index}]`));
  if (isRecord(value)) return Object.entries(value).flatMap(([key, item]) => leaves(item, `${path}.${key}`));
  return [[path, value]];
}

function deepFreeze<Value>(value: Value): Value {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  for (const field of Object.values(value)) deepFreeze(field);
  return Object.freeze(value);
}

// Two descriptors of one status that differ in everything else: a body leaf that is none of the
// descriptor's public fields must then be the same for both, a constant of the dialect.
const FIRST: ErrorDescriptor = {
  status: 403,
  type: 'permission_error',
  code: 'model_not_allowed',
  message: 'First conformance message.',
  param: 'model',
  reason: 'server_error',
  retryAfterSeconds: 7,
};
const SECOND: ErrorDescriptor = {
  status: 403,
  type: 'other_error_type',
  code: 'other_code',
  message: 'Second conformance message.',
  param: 'messages',
  reason: 'timeout',
  retryAfterSeconds: 11,
};

function unexplainedLeaves(dialect: Dialect): string[] {
  const first = dialect.errorBody(deepFreeze(structuredClone(FIRST)), 'req_first');
  const second = new Map(leaves(dialect.errorBody(deepFreeze(structuredClone(SECOND)), 'req_second')));
  const allowed = new Set<unknown>([FIRST.message, FIRST.code, FIRST.type, FIRST.param, 'req_first']);
  return leaves(first)
    .filter(([path, value]) => !allowed.has(value) && !Bun.deepEquals(second.get(path), value))
    .map(([path, value]) => `${path}: ${JSON.stringify(value)} is none of the descriptor's message, code, type or param`);
}

export function describeDialectConformance(name: string, options: DialectConformanceOptions): void {
  describe(`dialect conformance: ${name}`, () => {
    let current: DialectHarness | undefined;
    const harness = (): DialectHarness => {
      if (current === undefined) throw new Error('the dialect harness has not started');
      return current;
    };
    beforeAll(async () => {
      current = await startDialectHarness(options);
    });
    afterAll(async () => {
      await current?.gateway.stop();
      await current?.simulator.stop();
    });
    const dialect = dialectOf(options);
    const endpoint = chatOperationOf(options)?.endpoint;

    test('its operations share one dialect, one of them a chat operation, each with its own endpoint', () => {
      expect(dialect).toBeDefined();
      expect(options.operations.every((operation) => operation.dialect === dialect)).toBe(true);
      expect(endpoint).toBeString();
      const endpoints = options.operations.map((operation) => operation.endpoint);
      expect(new Set(endpoints).size).toBe(endpoints.length);
    });

    test('a plain request: 200 in the dialect’s answer shape with the upstream’s text, booked once', async () => {
      const text = 'Hello from the dialect suite';
      const response = await send(harness(), options, { text, stream: false });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('application/json');
      expect(options.readAnswerText(await response.json())).toBe(expectedAnswer(text));
      await expectBookedOnce(harness(), response, { endpoint: endpoint ?? '', status: 200, streamed: false });
    });

    test('a streamed request: SSE frames that assemble to the same text, booked once', async () => {
      const text = 'Stream from the dialect suite';
      const response = await send(harness(), options, { text, stream: true });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      const payloads = await readSse(response);
      expect(payloads.length).toBeGreaterThan(1);
      expect(options.readStreamText(payloads)).toBe(expectedAnswer(text));
      await expectBookedOnce(harness(), response, { endpoint: endpoint ?? '', status: 200, streamed: true });
    });

    test('an unknown model: 404 model_not_found in the dialect’s error shape, no upstream call, booked once', async () => {
      const before = harness().simulator.inferenceRequests().length;
      const response = await send(harness(), options, { model: UNKNOWN_MODEL, text: 'Anyone there?', stream: false });
      await expectErrorInDialectShape(dialect, response, 'model_not_found');
      expect(harness().simulator.inferenceRequests().length).toBe(before);
      await expectBookedOnce(harness(), response, { endpoint: endpoint ?? '', status: 404, streamed: false });
    });

    test('an unknown model, streamed: the same error as JSON, before any event', async () => {
      const response = await send(harness(), options, { model: UNKNOWN_MODEL, text: 'Anyone there?', stream: true });
      await expectErrorInDialectShape(dialect, response, 'model_not_found');
      await expectBookedOnce(harness(), response, { endpoint: endpoint ?? '', status: 404, streamed: true });
    });

    test('an invalid gateway key: 401 invalid_api_key in the dialect’s error shape, not booked (no account to book it to)', async () => {
      const response = await send(harness(), options, { text: 'Let me in', stream: false, key: INVALID_GATEWAY_KEY });
      await expectErrorInDialectShape(dialect, response, 'invalid_api_key');
      expect(await usageRowsOf(harness(), response.headers.get('x-request-id'))).toEqual([]);
    });

    test('a body that is not JSON: 400 invalid_json in the dialect’s error shape, booked once', async () => {
      const response = await call(harness().gateway, 'POST', options.path, '{"model": ');
      await expectErrorInDialectShape(dialect, response, 'invalid_json');
      await expectBookedOnce(harness(), response, { endpoint: endpoint ?? '', status: 400, streamed: false });
    });

    test('errorBody is pure: the same descriptor gives the same body, whatever came between, and is left unchanged', () => {
      // Not frozen here, so a write to the descriptor shows as a difference rather than a throw.
      const descriptor = structuredClone(FIRST);
      const first = dialect?.errorBody(descriptor, 'req_first');
      dialect?.errorBody(structuredClone(SECOND), 'req_second');
      expect(dialect?.errorBody(descriptor, 'req_first')).toEqual(first);
      expect(descriptor).toEqual(FIRST);
    });

    test('errorBody carries the descriptor’s message and code, and nothing else of it but type and param', () => {
      if (dialect === undefined) throw new Error('no dialect');
      const values = leaves(dialect.errorBody(FIRST, 'req_first')).map(([, value]) => value);
      expect(values).toContain(FIRST.message);
      expect(values).toContain(FIRST.code);
      expect(unexplainedLeaves(dialect)).toEqual([]);
    });
  });
}
