// Renders the collector in the Prometheus text exposition format, version 0.0.4: a HELP and a TYPE
// line per family, then its samples; histograms as cumulative `_bucket{le=…}` lines, `_sum` and
// `_count`. Rendering runs on a scrape, never on the request path.

import { logLinesDropped } from '../../core/logger.ts';
import type { UsageQueueView } from '../../core/spec/services.ts';
import { TOKEN_TYPES, type MetricsCollector, type RouteSeries } from './collector.ts';
import type { Histogram } from './histogram.ts';
import { escapeLabelValue, providerName, STATUS_CLASSES } from './labels.ts';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Lines another plugin adds to the scrape (the trace exporter's own counters). */
export interface MetricsSource {
  render(out: MetricsWriter): void;
}

export class MetricsWriter {
  private readonly lines: string[] = [];

  /** `constantLabels` go on every sample: `worker="2"` when several workers serve (KEYWAY_WORKERS). */
  constructor(private readonly constantLabels = '') {}

  private labelled(labels: string): string {
    if (this.constantLabels === '') return labels;
    return labels === '' ? this.constantLabels : `${this.constantLabels},${labels}`;
  }

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: string, value: number): void {
    const all = this.labelled(labels);
    this.lines.push(all === '' ? `${name} ${formatNumber(value)}` : `${name}{${all}} ${formatNumber(value)}`);
  }

  histogram(name: string, labels: string, histogram: Histogram): void {
    const all = this.labelled(labels);
    const prefix = all === '' ? '' : `${all},`;
    let cumulative = 0;
    for (let index = 0; index < histogram.bounds.length; index++) {
      cumulative += histogram.counts[index] as number;
      this.lines.push(`${name}_bucket{${prefix}le="${formatNumber(histogram.bounds[index] as number)}"} ${cumulative}`);
    }
    this.lines.push(`${name}_bucket{${prefix}le="+Inf"} ${histogram.count}`);
    this.sample(`${name}_sum`, labels, histogram.sum);
    this.sample(`${name}_count`, labels, histogram.count);
  }

  text(): string {
    return this.lines.length === 0 ? '' : `${this.lines.join('\n')}\n`;
  }
}

export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

const withLabel = (labels: string, name: string, value: string): string => `${labels},${name}="${escapeLabelValue(value)}"`;

/** One family over every route series that has something to show. */
function routeFamily(
  out: MetricsWriter,
  collector: MetricsCollector,
  name: string,
  type: 'counter' | 'histogram',
  help: string,
  each: (series: RouteSeries) => void,
): void {
  out.family(name, type, help);
  for (const series of collector.series) each(series);
}

/** A counter family by provider and reason (provider label → reason label → count). */
function byProviderAndReason(out: MetricsWriter, name: string, help: string, counts: ReadonlyMap<string, ReadonlyMap<string, number>>): void {
  out.family(name, 'counter', help);
  for (const [provider, byReason] of counts) {
    const providerLabel = `gen_ai_provider_name="${escapeLabelValue(provider === '_other' ? provider : providerName(provider))}"`;
    for (const [reason, count] of byReason) out.sample(name, withLabel(providerLabel, 'reason', reason), count);
  }
}

export function renderMetrics(
  collector: MetricsCollector,
  usageQueue: UsageQueueView | undefined,
  sources: readonly MetricsSource[],
  constantLabels = '',
): string {
  const out = new MetricsWriter(constantLabels);
  routeFamily(out, collector, 'keyway_requests_total', 'counter', 'Requests booked, by endpoint, provider, model, status class and error code.', (series) => {
    for (const [code, byClass] of series.requests) {
      for (let index = 0; index < byClass.length; index++) {
        const count = byClass[index] as number;
        if (count === 0) continue;
        const labels = withLabel(withLabel(series.labels, 'status_class', STATUS_CLASSES[index] || '_other'), 'error_type', code);
        out.sample('keyway_requests_total', labels, count);
      }
    }
  });
  routeFamily(
    out,
    collector,
    'keyway_gen_ai_server_request_duration_seconds',
    'histogram',
    'Time from receiving a request to booking it (a stream: its last byte), in seconds.',
    (series) => {
      series.durations.forEach((histogram, index) => {
        if (histogram !== undefined)
          out.histogram(
            'keyway_gen_ai_server_request_duration_seconds',
            withLabel(series.labels, 'status_class', STATUS_CLASSES[index] || '_other'),
            histogram,
          );
      });
    },
  );
  routeFamily(
    out,
    collector,
    'keyway_gen_ai_server_time_to_first_token_seconds',
    'histogram',
    "Streamed answers: time from receiving the request to the upstream's first part, in seconds.",
    (series) => {
      if (series.firstToken !== undefined) out.histogram('keyway_gen_ai_server_time_to_first_token_seconds', series.labels, series.firstToken);
    },
  );
  routeFamily(
    out,
    collector,
    'keyway_gen_ai_client_token_usage',
    'histogram',
    'Tokens per request by type, as the provider reported them (input includes cached_input; output includes reasoning).',
    (series) => {
      series.tokens.forEach((histogram, index) => {
        if (histogram !== undefined)
          out.histogram('keyway_gen_ai_client_token_usage', withLabel(series.labels, 'gen_ai_token_type', TOKEN_TYPES[index] as string), histogram);
      });
    },
  );
  routeFamily(out, collector, 'keyway_cost_usd_total', 'counter', 'Cost booked in USD (list price, or the provider-reported cost).', (series) => {
    if (series.pricedRequests > 0) out.sample('keyway_cost_usd_total', series.labels, series.costUsd);
  });
  routeFamily(
    out,
    collector,
    'keyway_unpriced_requests_total',
    'counter',
    'Served requests with usage but no price: booked as unpriced, never as $0.',
    (series) => {
      if (series.unpricedRequests > 0) out.sample('keyway_unpriced_requests_total', series.labels, series.unpricedRequests);
    },
  );
  routeFamily(
    out,
    collector,
    'keyway_usage_estimated_requests_total',
    'counter',
    "Requests booked with Keyway's estimate instead of the provider's usage (a cut stream, absurd counts).",
    (series) => {
      if (series.estimatedUsage > 0) out.sample('keyway_usage_estimated_requests_total', series.labels, series.estimatedUsage);
    },
  );
  routeFamily(
    out,
    collector,
    'keyway_fallback_attempts_total',
    'counter',
    'Upstream attempts beyond the first, by the provider that answered (else the last that failed).',
    (series) => {
      if (series.fallbackAttempts > 0) out.sample('keyway_fallback_attempts_total', series.labels, series.fallbackAttempts);
    },
  );
  byProviderAndReason(out, 'keyway_upstream_errors_total', 'Failed upstream attempts by provider and failure reason.', collector.upstreamErrors);
  byProviderAndReason(
    out,
    'keyway_skipped_candidates_total',
    'Fallback candidates passed over without an upstream call, their translation having refused the request (n > 1 on Anthropic), by provider and reason.',
    collector.skippedCandidates,
  );
  out.family('keyway_policy_refusals_total', 'counter', 'Requests refused by a policy or a permission, by error code.');
  for (const [code, count] of collector.policyRefusals) out.sample('keyway_policy_refusals_total', `error_type="${escapeLabelValue(code)}"`, count);
  out.family('keyway_budget_refusals_total', 'counter', 'Requests refused because a budget was exhausted (402 budget_exceeded).');
  out.sample('keyway_budget_refusals_total', '', collector.budgetRefusals);
  if (usageQueue !== undefined) {
    out.family('keyway_usage_queue_pending_rows', 'gauge', 'Usage rows booked and not yet written to the store.');
    out.sample('keyway_usage_queue_pending_rows', '', usageQueue.pending);
    out.family('keyway_usage_queue_buffered_rows', 'gauge', 'Usage rows held in memory (the rest of the pending rows are in the journal only).');
    out.sample('keyway_usage_queue_buffered_rows', '', usageQueue.buffered);
    out.family('keyway_usage_rows_written_total', 'counter', 'Usage rows written to the store by this process.');
    out.sample('keyway_usage_rows_written_total', '', usageQueue.totalWritten);
  }
  out.family('keyway_metrics_series_overflow_total', 'counter', 'Requests counted under model "_other" because the series limit was reached.');
  out.sample('keyway_metrics_series_overflow_total', '', collector.overflowed);
  renderProcess(out);
  for (const source of sources) source.render(out);
  return out.text();
}

const startTimeSeconds = Date.now() / 1000 - process.uptime();

function renderProcess(out: MetricsWriter): void {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  out.family('keyway_process_cpu_seconds_total', 'counter', 'User and system CPU time spent, in seconds.');
  out.sample('keyway_process_cpu_seconds_total', '', (cpu.user + cpu.system) / 1e6);
  out.family('keyway_process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
  out.sample('keyway_process_resident_memory_bytes', '', memory.rss);
  out.family('keyway_process_heap_used_bytes', 'gauge', 'JavaScript heap in use, in bytes.');
  out.sample('keyway_process_heap_used_bytes', '', memory.heapUsed);
  out.family('keyway_process_start_time_seconds', 'gauge', 'Start time of the process since the Unix epoch, in seconds.');
  out.sample('keyway_process_start_time_seconds', '', Math.round(startTimeSeconds));
  out.family('keyway_log_lines_dropped_total', 'counter', 'Log lines dropped because stdout could not take them (a full disk, a stuck pipe).');
  out.sample('keyway_log_lines_dropped_total', '', logLinesDropped());
}
