// Traces over OTLP/HTTP (JSON): one span per request and one per upstream attempt, with the
// OpenTelemetry GenAI attributes (docs/metrics.md, "Traces"). Configured by the standard OTEL_*
// variables; with no endpoint the plugin contributes nothing and its exporter is never loaded, so
// tracing off costs nothing.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { addMetricsSource } from '../metrics/sources.ts';
import { traceExportConfig } from './config.ts';
import type { ModelLabel } from './spans.ts';

const VERSION = '1.0.0';

export const otelTracesPlugin = definePlugin({
  name: 'otel-traces',
  version: VERSION,
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  description: 'OpenTelemetry traces over OTLP/HTTP JSON when OTEL_EXPORTER_OTLP_ENDPOINT is set',
  async setup({ env, fetch, logger, services }) {
    // The configuration is checked at start either way; the exporter's modules load only when tracing is on.
    const config = traceExportConfig(env);
    if (config === undefined) return {};
    const [{ TraceExporter }, { captureRequest }] = await Promise.all([import('./exporter.ts'), import('./spans.ts')]);
    // A model the catalog knows is shown as is; any other name only if redaction leaves it untouched.
    const modelLabel: ModelLabel = (provider, model) => {
      if (model === undefined || model === '') return undefined;
      if (provider !== undefined && services.pricing.price(provider, model) !== undefined) return model;
      return model.length <= 128 && services.errors.redact(model) === model ? model : '_other';
    };
    const checkText = (text: string): string => (services.errors.redact(text) === text ? text : '_redacted');
    const exporter = new TraceExporter(config, fetch, logger, modelLabel, VERSION, checkText);
    addMetricsSource(services, {
      render(out) {
        out.family('keyway_otel_spans_exported_total', 'counter', 'Spans the OTLP collector accepted.');
        out.sample('keyway_otel_spans_exported_total', '', exporter.stats.exportedSpans);
        out.family('keyway_otel_spans_dropped_total', 'counter', 'Spans dropped: the export queue was full, or the collector failed.');
        out.sample('keyway_otel_spans_dropped_total', 'reason="queue_full"', exporter.stats.droppedQueueFull);
        out.sample('keyway_otel_spans_dropped_total', 'reason="export_failed"', exporter.stats.droppedExportFailed);
        out.family('keyway_otel_export_failures_total', 'counter', 'OTLP export requests that failed.');
        out.sample('keyway_otel_export_failures_total', '', exporter.stats.failedExports);
        out.family('keyway_otel_queue_requests', 'gauge', 'Finished requests waiting for trace export.');
        out.sample('keyway_otel_queue_requests', '', exporter.queued);
      },
    });
    logger.info({ collector: new URL(config.url).origin, serviceName: config.serviceName }, 'exporting traces over OTLP/HTTP');
    return {
      hooks: {
        account(context, outcome) {
          exporter.offer(captureRequest(context, outcome));
        },
      },
      jobs: [{ name: 'otlp-trace-export', intervalMs: config.scheduleDelayMs, run: () => exporter.flush() }],
    };
  },
});
