// What metrics and tracing cost the account stage, per booked request, and what a scrape costs:
//   bun bench/metrics.ts
// The hook runs once per request after the answer; the scrape runs every scrape interval.

import { do_not_optimize, group, run, bench } from 'mitata';
import { createRequestContext } from '../core/lifecycle/context.ts';
import type { RequestContext, RequestOutcome } from '../core/spec/lifecycle.ts';
import type { Principal } from '../core/spec/principal.ts';
import { MetricsCollector } from '../plugins/metrics/collector.ts';
import { renderMetrics } from '../plugins/metrics/exposition.ts';
import { captureRequest } from '../plugins/otel-traces/spans.ts';

const principal: Principal = {
  keyId: 'key_bench',
  role: 'developer',
  accountId: 'default',
  teamId: undefined,
  byokAccess: true,
  environment: undefined,
  settings: {},
};
const request = new Request('http://keyway.bench/v1/chat/completions', { headers: { authorization: 'Bearer kw_ak_bench' } });
const key = { id: 'pk_1', owner: 'account' as const };

function servedContext(model: string): RequestContext {
  const context = createRequestContext('req_bench', request, principal, 'chat', () => undefined, { model, messages: [] });
  const started = context.startedAt + 1;
  context.served = { provider: 'openai', model, keyId: key.id, owner: key.owner, startedAt: started, firstByteAt: started + 120 };
  return context;
}

function fallbackContext(): RequestContext {
  const context = servedContext('gpt-4o');
  context.attempts.push({
    provider: 'openai',
    model: 'gpt-4o',
    keyId: 'pk_0',
    owner: 'account',
    reason: 'server_error',
    status: 500,
    durationMs: 40,
    startedAt: 0,
  });
  return context;
}

const success: RequestOutcome = {
  status: 200,
  usage: { inputTokens: 212, outputTokens: 96, totalTokens: 308, cachedInputTokens: 64, cacheWriteInputTokens: 0, reasoningTokens: 0 },
  finishReason: { unified: 'stop', raw: 'stop' },
  error: undefined,
  latencyMs: 812.3,
  streamed: true,
  costUsd: 0.00148,
};
const refused: RequestOutcome = {
  status: 402,
  usage: undefined,
  finishReason: undefined,
  error: { status: 402, type: 'budget_exceeded', code: 'budget_exceeded', message: 'over budget' },
  latencyMs: 0.4,
  streamed: false,
  costUsd: undefined,
};

const known = new Set(['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'o4-mini']);
const collector = new MetricsCollector((_provider, model) => known.has(model));
const served = servedContext('gpt-4o');
const withFallback = fallbackContext();
const uncatalogued = servedContext('my-finetune-not-in-catalog');
const refusedContext = createRequestContext('req_bench', request, principal, 'chat', () => undefined, { model: 'gpt-4o', messages: [] });
// Warm the series, as a running gateway has them after its first requests.
for (const context of [served, withFallback, uncatalogued, refusedContext]) collector.record(context, context === refusedContext ? refused : success);

// A scrape over a realistic spread: 4 endpoints × 4 models, each with answers and a few error codes.
const scraped = new MetricsCollector((_provider, model) => known.has(model));
for (const endpoint of ['chat', 'messages', 'embeddings', 'count_tokens']) {
  for (const model of known) {
    const context = createRequestContext('req_bench', request, principal, endpoint, () => undefined, { model, messages: [] });
    context.served = { provider: 'openai', model, keyId: 'pk_1', owner: 'account', startedAt: context.startedAt, firstByteAt: context.startedAt + 50 };
    for (let index = 0; index < 20; index++) scraped.record(context, success);
    scraped.record(context, { ...refused, error: { ...refused.error!, code: 'rate_limited' }, status: 429 });
  }
}
const queue = { pending: 0, buffered: 0, totalWritten: 1000, flush: async () => undefined };

group('metrics: account hook, per booked request', () => {
  bench('metrics: served stream with usage (series exists)', () => collector.record(served, success));
  bench('metrics: served after one fallback', () => collector.record(withFallback, success));
  bench('metrics: uncatalogued model (counted under _other)', () => collector.record(uncatalogued, success));
  bench('metrics: budget refusal', () => collector.record(refusedContext, refused));
  bench('otel-traces: captureRequest (tracing on)', () => do_not_optimize(captureRequest(served, success)));
});

group('metrics: scrape', () => {
  bench(`metrics: render (${scraped.series.length} route series)`, () => do_not_optimize(renderMetrics(scraped, queue, [])));
});

await run();
