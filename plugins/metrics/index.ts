// Prometheus metrics: `GET /metrics` in the text exposition format, with OpenTelemetry GenAI names
// where they fit (docs/metrics.md). Counted from the `account` hook, which runs exactly once per
// booked request, in memory only; rendered on a scrape. With several workers (KEYWAY_WORKERS) a scrape
// answers for all of them (workers.ts).

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { secretSetting } from '../../core/spec/settings.ts';
import { createScrapeCheck } from './access.ts';
import { MetricsCollector } from './collector.ts';
import { CONTENT_TYPE, renderMetrics } from './exposition.ts';
import { metricsSourcesOf } from './sources.ts';
import { METRICS_TOPIC, renderAllWorkers } from './workers.ts';

const exposition = (body: string): Response => new Response(body, { status: 200, headers: { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store' } });

export const metricsPlugin = definePlugin({
  name: 'metrics',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [{ name: 'KEYWAY_METRICS_TOKEN', description: 'The bearer token GET /metrics requires' }],
  description: 'GET /metrics in Prometheus text format: requests, latency, tokens, cost, fallbacks, upstream errors, refusals',
  setup({ services, env }) {
    const collector = new MetricsCollector((provider, model) => services.pricing.price(provider, model) !== undefined);
    // A guessable token would open every scrape (and the gateway's traffic figures) to whoever tries it.
    const checkScrape = createScrapeCheck(services, secretSetting('KEYWAY_METRICS_TOKEN', env.KEYWAY_METRICS_TOKEN));
    // Each worker of KEYWAY_WORKERS counts its own requests; the scrape it answers holds every worker's
    // samples, each under its own `worker` label so every series stays one worker's, monotonic.
    const worker = env.KEYWAY_WORKER_INDEX;
    const constantLabels = worker !== undefined && /^\d+$/.test(worker) ? `worker="${worker}"` : '';
    const render = () => renderMetrics(collector, services.usageQueue, metricsSourcesOf(services), constantLabels);
    const siblings = services.siblings;
    siblings?.respond(METRICS_TOPIC, render);
    return {
      hooks: {
        account(context, outcome) {
          collector.record(context, outcome);
        },
      },
      routes: [
        {
          method: 'GET',
          path: '/metrics',
          summary: 'Prometheus metrics (operator key, or the KEYWAY_METRICS_TOKEN bearer)',
          handle({ request, clientAddress }) {
            checkScrape(request.headers, clientAddress);
            return siblings === undefined ? exposition(render()) : renderAllWorkers(siblings, render()).then(exposition);
          },
        },
      ],
    };
  },
});
