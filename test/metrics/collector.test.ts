// The collector's bounds, driven directly: every token type, the series cap and `_other`, and label
// values that come only from known sets whatever the context holds.

import { describe, expect, test } from 'bun:test';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import { MAX_ROUTE_SERIES, MetricsCollector } from '../../plugins/metrics/collector.ts';
import { renderMetrics } from '../../plugins/metrics/exposition.ts';
import { parseExposition, sumOf, valueOf } from './exposition-parser.ts';

const principal = {
  keyId: 'key_1',
  role: 'developer' as const,
  accountId: 'default',
  teamId: undefined,
  byokAccess: true,
  environment: undefined,
  settings: {},
};
const request = new Request('http://keyway.test/v1/chat/completions');

function served(provider: string, model: string, endpoint = 'chat'): RequestContext {
  const context = createRequestContext('req_1', request, principal, endpoint, () => undefined, { model, messages: [] });
  context.served = { provider, model, keyId: 'pk_1', owner: 'account', startedAt: context.startedAt, firstByteAt: context.startedAt + 5 };
  return context;
}

const outcome = (overrides: Partial<RequestOutcome> = {}): RequestOutcome => ({
  status: 200,
  usage: { inputTokens: 1000, outputTokens: 300, totalTokens: 1300, cachedInputTokens: 400, cacheWriteInputTokens: 200, reasoningTokens: 120 },
  finishReason: { unified: 'stop', raw: 'end_turn' },
  error: undefined,
  latencyMs: 250,
  streamed: false,
  costUsd: 0.01,
  ...overrides,
});

const render = (collector: MetricsCollector) => parseExposition(renderMetrics(collector, undefined, []));

describe('the metrics collector', () => {
  test('every token type, an unpriced request and an estimated one', () => {
    const collector = new MetricsCollector(() => true);
    collector.record(served('anthropic', 'claude-sonnet-4'), outcome());
    collector.record(served('anthropic', 'claude-sonnet-4'), outcome({ costUsd: undefined, usageEstimated: true }));
    const exposition = render(collector);
    const route = { gen_ai_provider_name: 'anthropic', gen_ai_request_model: 'claude-sonnet-4' };
    const tokens = (type: string) => valueOf(exposition, 'keyway_gen_ai_client_token_usage_sum', { ...route, gen_ai_token_type: type });
    expect([tokens('input'), tokens('output'), tokens('cached_input'), tokens('cache_write'), tokens('reasoning')]).toEqual([2000, 600, 800, 400, 240]);
    // 1000 tokens fall in the 1024 bucket, not the 256 one.
    expect(valueOf(exposition, 'keyway_gen_ai_client_token_usage_bucket', { ...route, gen_ai_token_type: 'input', le: '256' })).toBe(0);
    expect(valueOf(exposition, 'keyway_gen_ai_client_token_usage_bucket', { ...route, gen_ai_token_type: 'input', le: '1024' })).toBe(2);
    expect(valueOf(exposition, 'keyway_cost_usd_total', route)).toBe(0.01);
    expect(valueOf(exposition, 'keyway_unpriced_requests_total', route)).toBe(1);
    expect(valueOf(exposition, 'keyway_usage_estimated_requests_total', route)).toBe(1);
    // A duration equal to a bound is in that bound's bucket (le is inclusive).
    expect(valueOf(exposition, 'keyway_gen_ai_server_request_duration_seconds_bucket', { ...route, status_class: '2xx', le: '0.16' })).toBe(0);
    expect(valueOf(exposition, 'keyway_gen_ai_server_request_duration_seconds_bucket', { ...route, status_class: '2xx', le: '0.32' })).toBe(2);
  });

  test('google is gcp.gemini, mistral is mistral_ai; unknown codes, reasons and odd names are _other', () => {
    const collector = new MetricsCollector(() => true);
    collector.record(served('google', 'gemini-2.5-pro'), outcome());
    collector.record(served('mistral', 'mistral-large-latest'), outcome());
    const failed = createRequestContext('req_2', request, principal, 'chat', () => undefined, { model: 'x', messages: [] });
    failed.attempts.push({ provider: 'Bad Provider!', model: 'x', keyId: 'pk', owner: 'account', reason: 'sunspots', status: 500, durationMs: 1 });
    collector.record(failed, outcome({ status: 502, usage: undefined, error: { status: 502, type: 'x', code: 'made_up_code', message: 'sk-proj-secret' } }));
    const exposition = render(collector);
    expect(sumOf(exposition, 'keyway_requests_total', { gen_ai_provider_name: 'gcp.gemini' })).toBe(1);
    expect(sumOf(exposition, 'keyway_requests_total', { gen_ai_provider_name: 'mistral_ai' })).toBe(1);
    expect(valueOf(exposition, 'keyway_requests_total', { gen_ai_provider_name: '_other', gen_ai_request_model: '_other', error_type: '_other' })).toBe(1);
    expect(valueOf(exposition, 'keyway_upstream_errors_total', { gen_ai_provider_name: '_other', reason: '_other' })).toBe(1);
  });

  test('a candidate skipped without an upstream call is neither an upstream error nor a fallback attempt', () => {
    const collector = new MetricsCollector(() => true);
    // Anthropic refused n > 1 before any call; OpenAI failed with a 500; Google answered.
    const context = served('google', 'gemini-2.5-pro');
    context.attempts.push(
      {
        provider: 'anthropic',
        model: 'claude-3-5-haiku-20241022',
        keyId: 'pk_a',
        owner: 'account',
        reason: 'unsupported_feature',
        status: 400,
        durationMs: 0,
        skipped: true,
      },
      { provider: 'openai', model: 'gpt-4o-mini', keyId: 'pk_o', owner: 'account', reason: 'server_error', status: 500, durationMs: 3 },
    );
    collector.record(context, outcome());
    const exposition = render(collector);
    expect(sumOf(exposition, 'keyway_upstream_errors_total', { gen_ai_provider_name: 'anthropic' })).toBe(0);
    expect(valueOf(exposition, 'keyway_upstream_errors_total', { gen_ai_provider_name: 'openai', reason: 'server_error' })).toBe(1);
    expect(valueOf(exposition, 'keyway_skipped_candidates_total', { gen_ai_provider_name: 'anthropic', reason: 'unsupported_feature' })).toBe(1);
    // Two upstream calls (OpenAI's failure and Google's answer): one beyond the first.
    expect(sumOf(exposition, 'keyway_fallback_attempts_total')).toBe(1);
  });

  test(`at most ${MAX_ROUTE_SERIES} route series; past it, new models count under _other`, () => {
    const collector = new MetricsCollector(() => true);
    for (let index = 0; index < MAX_ROUTE_SERIES + 50; index++) collector.record(served('openai', `model-${index}`), outcome({ usage: undefined }));
    expect(collector.series.length).toBeLessThanOrEqual(MAX_ROUTE_SERIES + 1);
    const exposition = render(collector);
    expect(valueOf(exposition, 'keyway_requests_total', { gen_ai_request_model: '_other' })).toBe(50);
    expect(valueOf(exposition, 'keyway_metrics_series_overflow_total')).toBe(50);
    expect(sumOf(exposition, 'keyway_requests_total')).toBe(MAX_ROUTE_SERIES + 50);
  });

  test('uncatalogued names are not remembered without bound', () => {
    const collector = new MetricsCollector(() => false);
    for (let index = 0; index < 5000; index++) collector.record(served('ollama', `client-name-${index}`), outcome());
    expect(collector.series).toHaveLength(1);
    expect(valueOf(render(collector), 'keyway_requests_total', { gen_ai_provider_name: 'ollama', gen_ai_request_model: '_other' })).toBe(5000);
  });
});

test('a refused request counts under the model it named, not under the first candidate routing planned', () => {
  const collector = new MetricsCollector(() => true);
  const context = createRequestContext('req_2', request, principal, 'chat', () => undefined, { model: 'gemini-2.5-flash', messages: [] });
  context.resolution = { provider: 'google', model: 'gemini-2.5-flash', explicit: false };
  // cost_optimized routing planned another provider's model first; a policy refused the request before any call.
  context.candidates = [{ provider: 'anthropic', model: 'claude-sonnet-4-5', key: {} as RequestContext['candidates'][number]['key'] }];
  collector.record(
    context,
    outcome({ status: 403, usage: undefined, costUsd: undefined, error: { code: 'provider_not_allowed', message: 'no' } as RequestOutcome['error'] }),
  );
  const exposition = render(collector);
  expect(
    sumOf(exposition, 'keyway_requests_total', {
      gen_ai_provider_name: 'gcp.gemini',
      gen_ai_request_model: 'gemini-2.5-flash',
      error_type: 'provider_not_allowed',
    }),
  ).toBe(1);
  expect(sumOf(exposition, 'keyway_requests_total', { gen_ai_provider_name: 'anthropic' })).toBe(0);
});
