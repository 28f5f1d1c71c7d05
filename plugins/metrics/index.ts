// Prometheus metrics: `GET /metrics` in the text exposition format, with OpenTelemetry GenAI names
// where they fit (docs/metrics.md). Counted from the `account` hook, which runs exactly once per
// booked request, in memory only; rendered on a scrape.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { createScrapeCheck } from './access.ts';
import { MetricsCollector } from './collector.ts';
import { CONTENT_TYPE, renderMetrics } from './exposition.ts';
import { metricsSourcesOf } from './sources.ts';

export const metricsPlugin = definePlugin({
  name: 'metrics',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [{ name: 'KEYWAY_METRICS_TOKEN', description: 'The bearer token GET /metrics requires' }],
  description: 'GET /metrics in Prometheus text format: requests, latency, tokens, cost, fallbacks, upstream errors, refusals',
  setup({ services, env }) {
    const collector = new MetricsCollector((provider, model) => services.pricing.price(provider, model) !== undefined);
    const checkScrape = createScrapeCheck(services, env.KEYWAY_METRICS_TOKEN);
    // Each worker of KEYWAY_WORKERS counts its own requests and a scrape reaches one of them: the
    // label keeps every series monotonic (no false counter resets); sum over `worker` for the gateway.
    const worker = env.KEYWAY_WORKER_INDEX;
    const constantLabels = worker !== undefined && /^\d+$/.test(worker) ? `worker="${worker}"` : '';
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
            const body = renderMetrics(collector, services.usageQueue, metricsSourcesOf(services), constantLabels);
            return new Response(body, { status: 200, headers: { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store' } });
          },
        },
      ],
    };
  },
});
