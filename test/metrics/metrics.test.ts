// GET /metrics after real requests through the gateway to the OpenAI simulator: every counter is
// checked against what was sent and against the usage rows the gateway booked, the text parses as
// Prometheus 0.0.4, and no key, prompt or client-chosen model name ever appears in it.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, call, expectSpecError, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { parseExposition, sumOf, valueOf, type Exposition } from './exposition-parser.ts';

const FIRST_KEY = 'sk-proj-MetricsCanaryProviderKeyNumber0001';
const SECOND_KEY = 'sk-proj-MetricsCanaryProviderKeyNumber0002';
const METRICS_TOKEN = 'metrics-scrape-token-CanaryValue-7f3a9c';
const PROMPT_CANARY = 'PROMPT-CANARY-d41d8cd98f00b204';
const MODEL_CANARY = 'sk-proj-ModelNameCanaryKeyShaped00000000042';
const PLAIN_MODEL_CANARY = 'gpt-canary-model-e3b0c442';

let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [FIRST_KEY, SECOND_KEY] });
  gateway = await startTestGateway({
    probes: false,
    logLevel: 'warn',
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_METRICS_TOKEN: METRICS_TOKEN },
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: FIRST_KEY },
    { name: 'openai', api_key: SECOND_KEY },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

async function scrape(key: string = OPERATOR_KEY): Promise<{ text: string; exposition: Exposition }> {
  const response = await call(gateway, 'GET', '/metrics', undefined, { key });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  const text = await response.text();
  return { text, exposition: parseExposition(text) };
}

const chat = (body: Record<string, unknown>, key?: string) =>
  call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: `say hi ${PROMPT_CANARY}` }], ...body }, { key });

const ROUTE = { endpoint: 'chat', gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o' };

describe('GET /metrics after real requests', () => {
  let rows: UsageRecord[];
  let exposition: Exposition;
  let text: string;

  beforeAll(async () => {
    // Two answers, the second with half its prompt cached; one stream; a fallback; an upstream error.
    for (const body of [{ prompt_cache_key: 'metrics-1' }, { prompt_cache_key: 'metrics-1' }]) {
      const response = await chat(body);
      expect(response.status).toBe(200);
      await response.text();
    }
    const stream = await chat({ stream: true, stream_options: { include_usage: true } });
    expect(stream.status).toBe(200);
    expect(await stream.text()).toContain('[DONE]');
    simulator.inject({ kind: 'server_error' });
    const fallback = await chat({});
    expect(fallback.status).toBe(200);
    expect(fallback.headers.get('x-fallback-attempts')).toBe('1');
    await fallback.text();
    simulator.inject({ kind: 'overloaded' });
    await expectSpecError(await chat({ routing: { strategy: 'direct' } }), 502, 'upstream_error');
    // Through /v1/messages: another endpoint, the same operation.
    const messages = await call(gateway, 'POST', '/v1/messages', { model: 'gpt-4o', max_tokens: 20, messages: [{ role: 'user', content: 'hello' }] });
    expect(messages.status).toBe(200);
    await messages.text();
    // Refused before any upstream call: a model nobody serves, and a canary key as the model name.
    await expectSpecError(await chat({ model: PLAIN_MODEL_CANARY.replace('gpt-', 'zz-') }), 404, 'model_not_found');
    // A key where a name belongs is refused as such (docs/security.md, "Keys in the wrong field").
    await expectSpecError(await chat({ model: MODEL_CANARY }), 400, 'invalid_field');
    // Not authenticated: answered, never booked, never counted.
    await expectSpecError(await chat({}, ''), 401, 'invalid_api_key');
    await Bun.sleep(20);
    await flushUsage(gateway);
    rows = await gateway.runtime.store.listUsage('default');
    ({ text, exposition } = await scrape());
  });

  test('requests by endpoint, provider, model, status class and error code', () => {
    expect(rows).toHaveLength(8);
    expect(valueOf(exposition, 'keyway_requests_total', { ...ROUTE, status_class: '2xx', error_type: '' })).toBe(4);
    expect(valueOf(exposition, 'keyway_requests_total', { ...ROUTE, status_class: '5xx', error_type: 'upstream_error' })).toBe(1);
    expect(valueOf(exposition, 'keyway_requests_total', { ...ROUTE, endpoint: 'messages', status_class: '2xx', error_type: '' })).toBe(1);
    // Refused before any provider was chosen: an unknown model, and a key sent as the model.
    for (const errorType of ['model_not_found', 'invalid_field']) {
      const labels = { endpoint: 'chat', gen_ai_provider_name: '', gen_ai_request_model: '', status_class: '4xx', error_type: errorType };
      expect({ errorType, count: valueOf(exposition, 'keyway_requests_total', labels) }).toEqual({ errorType, count: 1 });
    }
    // Every booked request is counted once, and nothing else is.
    expect(sumOf(exposition, 'keyway_requests_total')).toBe(rows.length);
  });

  test('latency and time-to-first-token histograms', () => {
    expect(valueOf(exposition, 'keyway_gen_ai_server_request_duration_seconds_count', { ...ROUTE, status_class: '2xx' })).toBe(4);
    expect(valueOf(exposition, 'keyway_gen_ai_server_request_duration_seconds_count', { ...ROUTE, status_class: '5xx' })).toBe(1);
    const booked = rows.filter((row) => row.endpoint === 'chat' && row.model === 'gpt-4o' && row.status === 200);
    const sum = valueOf(exposition, 'keyway_gen_ai_server_request_duration_seconds_sum', { ...ROUTE, status_class: '2xx' }) as number;
    expect(sum).toBeCloseTo(booked.reduce((total, row) => total + row.latencyMs, 0) / 1000, 2);
    // Only the stream has a time to first token, and it cannot exceed the stream's whole duration.
    expect(valueOf(exposition, 'keyway_gen_ai_server_time_to_first_token_seconds_count', ROUTE)).toBe(1);
    const streamed = rows.find((row) => row.streamed && row.status === 200) as UsageRecord;
    expect(valueOf(exposition, 'keyway_gen_ai_server_time_to_first_token_seconds_sum', ROUTE) as number).toBeLessThanOrEqual(streamed.latencyMs / 1000 + 1e-3);
  });

  test('tokens by type equal the usage rows', () => {
    const served = rows.filter((row) => row.model === 'gpt-4o' && row.status === 200);
    const total = (field: 'inputTokens' | 'outputTokens' | 'cachedInputTokens') =>
      served.filter((row) => row.endpoint === 'chat').reduce((sum, row) => sum + row[field], 0);
    const tokens = (type: string) => valueOf(exposition, 'keyway_gen_ai_client_token_usage_sum', { ...ROUTE, gen_ai_token_type: type });
    expect(tokens('input')).toBe(total('inputTokens'));
    expect(tokens('output')).toBe(total('outputTokens'));
    expect(valueOf(exposition, 'keyway_gen_ai_client_token_usage_count', { ...ROUTE, gen_ai_token_type: 'input' })).toBe(4);
    expect(total('cachedInputTokens')).toBeGreaterThan(0);
    expect(tokens('cached_input')).toBe(total('cachedInputTokens'));
    // Kinds a request did not have are not observed.
    expect(tokens('reasoning')).toBeUndefined();
    expect(tokens('cache_write')).toBeUndefined();
    expect(sumOf(exposition, 'keyway_gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' })).toBe(
      served.reduce((sum, row) => sum + row.inputTokens, 0),
    );
  });

  test('cost equals the booked cost; nothing served was unpriced', () => {
    const booked = rows.filter((row) => row.endpoint === 'chat' && row.model === 'gpt-4o').reduce((sum, row) => sum + (row.costUsd ?? 0), 0);
    expect(booked).toBeGreaterThan(0);
    expect(valueOf(exposition, 'keyway_cost_usd_total', ROUTE) as number).toBeCloseTo(booked, 12);
    expect(sumOf(exposition, 'keyway_unpriced_requests_total')).toBe(0);
  });

  test('fallbacks and upstream errors by provider and reason', () => {
    expect(valueOf(exposition, 'keyway_fallback_attempts_total', ROUTE)).toBe(1);
    // Attempts beyond the first: the failed direct call had one attempt, so no fallback (its row counts 1 failed attempt).
    expect(sumOf(exposition, 'keyway_fallback_attempts_total')).toBe(1);
    expect(valueOf(exposition, 'keyway_upstream_errors_total', { gen_ai_provider_name: 'openai', reason: 'server_error' })).toBe(2);
    expect(sumOf(exposition, 'keyway_upstream_errors_total')).toBe(2);
  });

  test('no refusals were counted, and the usage queue is drained', () => {
    expect(valueOf(exposition, 'keyway_budget_refusals_total')).toBe(0);
    expect(sumOf(exposition, 'keyway_policy_refusals_total')).toBe(0);
    expect(valueOf(exposition, 'keyway_usage_queue_pending_rows')).toBe(0);
    expect(valueOf(exposition, 'keyway_usage_rows_written_total')).toBe(rows.length);
    expect(valueOf(exposition, 'keyway_process_resident_memory_bytes') as number).toBeGreaterThan(0);
  });

  test('every family is prefixed keyway_ and declares HELP and TYPE', () => {
    expect(exposition.families.size).toBeGreaterThan(10);
    for (const family of exposition.families.values()) {
      expect(family.name.startsWith('keyway_')).toBe(true);
      expect(family.help.length).toBeGreaterThan(0);
      expect(family.type).not.toBe('untyped');
    }
  });

  test('canary scan: no provider key, gateway key, token, prompt or client-chosen model name', () => {
    for (const canary of [FIRST_KEY, SECOND_KEY, OPERATOR_KEY, gateway.defaultAdminKey, METRICS_TOKEN, PROMPT_CANARY, MODEL_CANARY, 'zz-canary']) {
      expect(text).not.toContain(canary);
    }
    expect(text).not.toContain('sk-proj-');
    expect(text).not.toContain('kw_');
  });
});

describe('a client-chosen model name that reaches the upstream is still no label', () => {
  test('an uncatalogued model counts under _other', async () => {
    const before = (await scrape()).exposition;
    const otherBefore = sumOf(before, 'keyway_requests_total', { gen_ai_request_model: '_other' });
    // `openai/…` names the provider, so the request reaches the simulator, which answers 404.
    const response = await chat({ model: `openai/${PLAIN_MODEL_CANARY}`, routing: { strategy: 'direct' } });
    expect(response.status).toBeGreaterThanOrEqual(400);
    await response.text();
    await Bun.sleep(20);
    const { text, exposition } = await scrape();
    expect(sumOf(exposition, 'keyway_requests_total', { gen_ai_request_model: '_other' })).toBe(otherBefore + 1);
    expect(text).not.toContain(PLAIN_MODEL_CANARY);
    expect(text).not.toContain('canary');
  });
});

describe('who may scrape', () => {
  test('the operator key and the metrics token may; a bad token, no key and an account admin key may not', async () => {
    await scrape(OPERATOR_KEY);
    await scrape(METRICS_TOKEN);
    await expectSpecError(await call(gateway, 'GET', '/metrics', undefined, { key: '' }), 401, 'invalid_api_key');
    await expectSpecError(await call(gateway, 'GET', '/metrics', undefined, { key: `${METRICS_TOKEN}x` }), 401, 'invalid_api_key');
    await expectSpecError(await call(gateway, 'GET', '/metrics', undefined, { key: gateway.defaultAdminKey }), 403, 'permission_denied');
  });

  test('a developer key is refused 403', async () => {
    const created = await call(gateway, 'POST', '/v1/keys', { name: 'dev', role: 'developer' }, { key: gateway.defaultAdminKey });
    expect(created.status).toBe(201);
    const { api_key: developerKey } = (await created.json()) as { api_key: string };
    await expectSpecError(await call(gateway, 'GET', '/metrics', undefined, { key: developerKey }), 403, 'permission_denied');
  });
});
