// Traces over OTLP/HTTP to a local receiver: the request span (child of the caller's traceparent) and
// one child span per upstream attempt, with the GenAI attributes, and nothing secret in the export.
// With no endpoint configured, the plugin contributes no hook and no job.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createLogger } from '../../core/logger.ts';
import { SettingError } from '../../core/spec/settings.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { traceExportConfig } from '../../plugins/otel-traces/config.ts';
import { TraceExporter } from '../../plugins/otel-traces/exporter.ts';
import type { RequestRecord } from '../../plugins/otel-traces/spans.ts';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { parseExposition, valueOf } from './exposition-parser.ts';

const FIRST_KEY = 'sk-proj-TracesCanaryProviderKeyNumber00001';
const SECOND_KEY = 'sk-proj-TracesCanaryProviderKeyNumber00002';
const PROMPT_CANARY = 'TRACE-PROMPT-CANARY-9e107d9d372bb6826bd8';
const MODEL_CANARY = 'sk-proj-TraceModelNameCanaryKeyShaped000077';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';

interface Attribute {
  key: string;
  value: Record<string, unknown>;
}
interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Attribute[];
  status: { code: number; message?: string };
}
interface Received {
  headers: Headers;
  text: string;
  body: { resourceSpans: Array<{ resource: { attributes: Attribute[] }; scopeSpans: Array<{ spans: Span[] }> }> };
}

const attributesOf = (span: Span): Record<string, unknown> => Object.fromEntries(span.attributes.map(({ key, value }) => [key, Object.values(value)[0]]));

let simulator: SimulatorHandle;
let receiver: ReturnType<typeof Bun.serve>;
const received: Received[] = [];
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [FIRST_KEY, SECOND_KEY] });
  receiver = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method !== 'POST' || url.pathname !== '/otlp/v1/traces') return new Response('not found', { status: 404 });
      const text = await request.text();
      received.push({ headers: request.headers, text, body: JSON.parse(text) });
      return Response.json({});
    },
  });
  gateway = await startTestGateway({
    probes: false,
    logLevel: 'warn',
    env: {
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}/otlp/`,
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-token,x-tenant=keyway',
      OTEL_SERVICE_NAME: 'keyway-test',
      OTEL_BSP_SCHEDULE_DELAY: '20',
    },
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: FIRST_KEY },
    { name: 'openai', api_key: SECOND_KEY },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
  receiver.stop(true);
});

const allSpans = (): Span[] => received.flatMap((entry) => entry.body.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans)));

async function spansOfRequest(requestId: string, count: number): Promise<Span[]> {
  for (let waited = 0; waited < 5000; waited += 20) {
    const request = allSpans().find((span) => attributesOf(span)['keyway.request_id'] === requestId);
    if (request !== undefined) {
      const spans = allSpans().filter((span) => span.traceId === request.traceId);
      if (spans.length >= count) return spans;
    }
    await Bun.sleep(20);
  }
  throw new Error(`the receiver never got ${count} spans of ${requestId}`);
}

const chat = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: PROMPT_CANARY }], ...body }, { headers });

describe('OTLP traces', () => {
  test('a fallback: the request span under the caller traceparent, and one child span per attempt', async () => {
    simulator.inject({ kind: 'server_error' });
    const response = await chat({}, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`, 'x-request-id': 'trace-fallback-1' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    await response.text();
    const spans = await spansOfRequest('trace-fallback-1', 3);
    expect(spans).toHaveLength(3);
    const [request, failed, served] = spans as [Span, Span, Span];
    expect(request.traceId).toBe(TRACE_ID);
    expect(request.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(request.kind).toBe(2);
    expect(request.name).toBe('chat gpt-4o');
    await flushUsage(gateway);
    const row = (await gateway.runtime.store.listUsage('default')).find((usage) => usage.requestId === 'trace-fallback-1') as UsageRecord;
    expect(attributesOf(request)).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.response.model': 'gpt-4o',
      'gen_ai.usage.input_tokens': String(row.inputTokens),
      'gen_ai.usage.output_tokens': String(row.outputTokens),
      'gen_ai.response.finish_reasons': { values: [{ stringValue: 'stop' }] },
      'http.response.status_code': '200',
      'keyway.fallback_attempts': '1',
      'keyway.cost_usd': row.costUsd,
    });
    expect(request.status.code).toBe(0);
    for (const child of [failed, served]) {
      expect(child.traceId).toBe(TRACE_ID);
      expect(child.parentSpanId).toBe(request.spanId);
      expect(child.kind).toBe(3);
      expect(BigInt(child.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(request.startTimeUnixNano));
      expect(BigInt(child.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(request.endTimeUnixNano));
    }
    expect(BigInt(failed.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(served.startTimeUnixNano));
    expect(attributesOf(failed)).toMatchObject({
      'gen_ai.provider.name': 'openai',
      'error.type': 'server_error',
      'http.response.status_code': '500',
      'keyway.attempt': '1',
    });
    expect(failed.status).toEqual({ code: 2, message: 'server_error' });
    expect(attributesOf(served)).toMatchObject({ 'keyway.attempt': '2', 'gen_ai.usage.input_tokens': String(row.inputTokens) });
    expect(attributesOf(served)['gen_ai.response.time_to_first_chunk']).toBeGreaterThanOrEqual(0);
    expect(attributesOf(failed)['keyway.provider_key_id']).not.toBe(attributesOf(served)['keyway.provider_key_id']);
  });

  test('an upstream error marks the request span and its attempt as errors; without traceparent a new trace starts', async () => {
    simulator.inject({ kind: 'server_error' });
    const response = await chat({ routing: { strategy: 'direct' } }, { 'x-request-id': 'trace-error-1' });
    expect(response.status).toBe(502);
    const [request, attempt] = (await spansOfRequest('trace-error-1', 2)) as [Span, Span];
    expect(request.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(request.traceId).not.toBe(TRACE_ID);
    expect(request.parentSpanId).toBeUndefined();
    expect(request.status).toEqual({ code: 2, message: 'upstream_error' });
    expect(attributesOf(request)['error.type']).toBe('upstream_error');
    expect(attempt.parentSpanId).toBe(request.spanId);
    expect(attributesOf(attempt)['error.type']).toBe('server_error');
  });

  test('the export carries the service name and the configured headers, and no secret, prompt or client-chosen key-shaped model', async () => {
    const streamed = await chat({ stream: true }, { 'x-request-id': 'trace-stream-1' });
    await streamed.text();
    // A key as the model is refused before routing (docs/security.md, "Keys in the wrong field"): one span, no model.
    const canary = await chat({ model: `openai/${MODEL_CANARY}`, routing: { strategy: 'direct' } }, { 'x-request-id': 'trace-canary-1' });
    expect(canary.status).toBe(400);
    await canary.text();
    // A key sent as the request id is not taken: the request has an id of Keyway's own.
    const idCanary = await chat({}, { 'x-request-id': MODEL_CANARY });
    await idCanary.text();
    const [streamSpan] = (await spansOfRequest('trace-stream-1', 2)) as [Span];
    expect(attributesOf(streamSpan)['keyway.streamed']).toBe(true);
    const [canarySpan] = (await spansOfRequest('trace-canary-1', 1)) as [Span];
    expect(attributesOf(canarySpan)['gen_ai.request.model']).toBeUndefined();
    await spansOfRequest(idCanary.headers.get('x-request-id') ?? '', 2);
    const last = received[received.length - 1] as Received;
    expect(last.headers.get('authorization')).toBe('Bearer collector-token');
    expect(last.headers.get('x-tenant')).toBe('keyway');
    expect(last.headers.get('content-type')).toBe('application/json');
    expect(attributesOf({ attributes: last.body.resourceSpans[0]?.resource.attributes ?? [] } as Span)['service.name']).toBe('keyway-test');
    const everything = received.map((entry) => entry.text).join('\n');
    for (const secret of [FIRST_KEY, SECOND_KEY, OPERATOR_KEY, gateway.defaultAdminKey, PROMPT_CANARY, MODEL_CANARY, 'collector-token']) {
      expect(everything).not.toContain(secret);
    }
    expect(everything).not.toContain('sk-proj-');
  });

  test('the exporter reports itself in /metrics', async () => {
    // The collector holds a batch once it has read the request; the exporter counts it once the answer
    // is back: a moment later, which a busy machine can stretch.
    const exportedCount = async (): Promise<number> =>
      valueOf(parseExposition(await (await call(gateway, 'GET', '/metrics')).text()), 'keyway_otel_spans_exported_total') as number;
    const deadline = Date.now() + 5_000;
    let exported = await exportedCount();
    while (exported < allSpans().length && Date.now() < deadline) {
      await Bun.sleep(20);
      exported = await exportedCount();
    }
    expect(exported).toBeGreaterThanOrEqual(allSpans().length);
    const exposition = parseExposition(await (await call(gateway, 'GET', '/metrics')).text());
    expect(valueOf(exposition, 'keyway_otel_spans_dropped_total', { reason: 'queue_full' })).toBe(0);
    expect(valueOf(exposition, 'keyway_otel_export_failures_total')).toBe(0);
  });
});

describe('no endpoint, no tracing', () => {
  test('the plugin contributes no hook and no job, and no variable means no config', async () => {
    expect(traceExportConfig({})).toBeUndefined();
    expect(traceExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(traceExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(traceExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })?.url).toBe('http://collector:4318/v1/traces');
    expect(traceExportConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c.example/traces' })?.url).toBe('https://c.example/traces');
    expect(() => traceExportConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow();
    const plain = await startTestGateway({ probes: false, logLevel: 'warn' });
    try {
      expect(plain.runtime.plugins.plugins.map((plugin) => plugin.name)).toContain('otel-traces');
      expect(plain.runtime.plugins.hooks.account.map((hook) => hook.plugin)).not.toContain('otel-traces');
      expect(plain.runtime.plugins.jobs.map((job) => job.plugin)).not.toContain('otel-traces');
      const text = await (await call(plain, 'GET', '/metrics')).text();
      expect(text).not.toContain('keyway_otel_');
    } finally {
      await plain.stop();
    }
  });

  // QA19 ops L2: a bad OTEL_* value read `plugin 'otel-traces' (builtin): setup failed: …`; as a
  // SettingError it is the variable's own line, as for every other setting (core/registry.ts).
  test("a bad OTEL_* value is the variable's own refusal, naming it", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    const refusals: Array<[Record<string, string>, string]> = [
      [{ ...endpoint, OTEL_BSP_SCHEDULE_DELAY: 'soon' }, 'OTEL_BSP_SCHEDULE_DELAY must be an integer between 10 and 3600000; got "soon".'],
      [{ ...endpoint, OTEL_BSP_MAX_QUEUE_SIZE: '1e3' }, 'OTEL_BSP_MAX_QUEUE_SIZE must be an integer between 1 and 1000000; got "1e3".'],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, 'OTEL_EXPORTER_OTLP_ENDPOINT is not a URL'],
      [
        { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' },
        'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must start with http:// or https://; got the scheme grpc:.',
      ],
      [{ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }, 'OTEL_EXPORTER_OTLP_HEADERS has an entry that is not name=value'],
    ];
    for (const [environment, message] of refusals) {
      let thrown: unknown;
      try {
        traceExportConfig(environment);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(SettingError);
      expect((thrown as Error).message).toContain(message);
    }
  });
});

describe('the export queue is bounded', () => {
  const logger = createLogger('silent');
  const record = (requestId: string): RequestRecord => ({
    requestId,
    endpoint: 'chat',
    accountId: 'default',
    teamId: undefined,
    startedAt: performance.now(),
    endedAt: performance.now() + 1,
    status: 200,
    errorCode: undefined,
    streamed: false,
    usage: undefined,
    usageEstimated: false,
    finishReason: undefined,
    costUsd: undefined,
    resolvedProvider: 'openai',
    resolvedModel: 'gpt-4o',
    served: { provider: 'openai', model: 'gpt-4o', keyId: 'pk_1', owner: 'account' },
    attempts: [],
    traceparent: undefined,
  });
  const config = {
    url: 'http://collector.invalid/v1/traces',
    headers: {},
    serviceName: 'keyway',
    scheduleDelayMs: 60_000,
    maxQueueSize: 2,
    maxBatchSize: 10,
    timeoutMs: 1000,
  };

  test('past the queue size, records are dropped and counted; a failed POST drops its spans and is counted', async () => {
    let status = 500;
    const posted: string[] = [];
    const fakeFetch = (async (_url: string, init: RequestInit) => {
      posted.push(String(init.body));
      return new Response('', { status });
    }) as unknown as typeof fetch;
    const exporter = new TraceExporter(config, fakeFetch, logger, (_provider, model) => model, '1.0.0');
    exporter.offer(record('a'));
    exporter.offer(record('b'));
    exporter.offer(record('c'));
    expect(exporter.queued).toBe(2);
    expect(exporter.stats.droppedQueueFull).toBe(2);
    await exporter.flush();
    expect(posted).toHaveLength(1);
    expect(exporter.stats).toEqual({ exportedSpans: 0, droppedQueueFull: 2, droppedExportFailed: 4, failedExports: 1 });
    status = 200;
    exporter.offer(record('d'));
    await exporter.flush();
    expect(exporter.stats.exportedSpans).toBe(2);
    expect(exporter.queued).toBe(0);
  });
});
