// The standard OpenTelemetry environment variables, read once at start. No endpoint means no
// exporter at all: the plugin then contributes nothing and costs nothing.

import { integerSetting, SettingError, urlSetting } from '../../core/spec/settings.ts';

export interface TraceExportConfig {
  /** Where spans are POSTed: `{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is. */
  url: string;
  headers: Record<string, string>;
  serviceName: string;
  /** OTEL_BSP_SCHEDULE_DELAY: how often a batch is sent. */
  scheduleDelayMs: number;
  /** OTEL_BSP_MAX_QUEUE_SIZE: requests waiting for export; past it, new ones are dropped and counted. */
  maxQueueSize: number;
  /** OTEL_BSP_MAX_EXPORT_BATCH_SIZE: requests per POST; a full batch is sent at once. */
  maxBatchSize: number;
  /** OTEL_EXPORTER_OTLP_TIMEOUT: per POST. */
  timeoutMs: number;
}

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The core's readers, so a bad value is the variable's own one-line refusal (a SettingError), as for
 * every other setting: a plain Error read `plugin 'otel-traces' (builtin): setup failed: …` (QA19 ops L2).
 */
function integer(environment: Environment, name: string, fallback: number, minimum: number, maximum: number): number {
  return integerSetting(name, environment[name], fallback, minimum, maximum);
}

/** `key1=value1,key2=value2`, values percent-decoded (the OTLP exporter convention). Values are never echoed. */
export function parseHeaders(text: string | undefined, variable = 'OTEL_EXPORTER_OTLP_HEADERS'): Record<string, string> {
  const headers: Record<string, string> = {};
  if (text === undefined) return headers;
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const equals = entry.indexOf('=');
    const name = equals > 0 ? entry.slice(0, equals).trim().toLowerCase() : '';
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new SettingError(`${variable} has an entry that is not name=value`);
    let value: string;
    try {
      value = decodeURIComponent(entry.slice(equals + 1).trim());
    } catch {
      throw new SettingError(`${variable}: the value of '${name}' is not valid percent-encoding`);
    }
    headers[name] = value;
  }
  return headers;
}

/** The traces endpoint given, or the general endpoint's `/v1/traces`; each is checked as the variable it is. */
function tracesUrl(environment: Environment): string | undefined {
  const specific = urlSetting('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', environment.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (specific !== undefined) return specific;
  const base = urlSetting('OTEL_EXPORTER_OTLP_ENDPOINT', environment.OTEL_EXPORTER_OTLP_ENDPOINT);
  return base === undefined ? undefined : `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** The exporter's settings, or undefined when tracing is off (no endpoint, OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER=none). */
export function traceExportConfig(environment: Environment): TraceExportConfig | undefined {
  if (environment.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (environment.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
  const url = tracesUrl(environment);
  if (url === undefined) return undefined;
  const maxQueueSize = integer(environment, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1, 1_000_000);
  return {
    url,
    headers: {
      ...parseHeaders(environment.OTEL_EXPORTER_OTLP_HEADERS),
      ...parseHeaders(environment.OTEL_EXPORTER_OTLP_TRACES_HEADERS, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
    },
    serviceName: environment.OTEL_SERVICE_NAME?.trim() || 'keyway',
    scheduleDelayMs: integer(environment, 'OTEL_BSP_SCHEDULE_DELAY', 5000, 10, 3_600_000),
    maxQueueSize,
    maxBatchSize: Math.min(maxQueueSize, integer(environment, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1, 1_000_000)),
    timeoutMs: integer(environment, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', integer(environment, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10_000, 1, 600_000), 1, 600_000),
  };
}
