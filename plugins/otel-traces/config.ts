// The standard OpenTelemetry environment variables, read once at start. No endpoint means no
// exporter at all: the plugin then contributes nothing and costs nothing.

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

function integer(environment: Environment, name: string, fallback: number, minimum: number, maximum: number): number {
  const text = environment[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum || value > maximum) throw new Error(`${name} must be an integer from ${minimum} to ${maximum}`);
  return value;
}

/** `key1=value1,key2=value2`, values percent-decoded (the OTLP exporter convention). Values are never echoed. */
export function parseHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (text === undefined) return headers;
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const equals = entry.indexOf('=');
    const name = equals > 0 ? entry.slice(0, equals).trim().toLowerCase() : '';
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new Error('OTEL_EXPORTER_OTLP_HEADERS has an entry that is not name=value');
    let value: string;
    try {
      value = decodeURIComponent(entry.slice(equals + 1).trim());
    } catch {
      throw new Error(`OTEL_EXPORTER_OTLP_HEADERS: the value of '${name}' is not valid percent-encoding`);
    }
    headers[name] = value;
  }
  return headers;
}

function tracesUrl(environment: Environment): string | undefined {
  const specific = environment.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = environment.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const url = specific ? specific : base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the OTLP traces endpoint is not a URL (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('the OTLP traces endpoint must be http:// or https://');
  return url;
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
    headers: { ...parseHeaders(environment.OTEL_EXPORTER_OTLP_HEADERS), ...parseHeaders(environment.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    serviceName: environment.OTEL_SERVICE_NAME?.trim() || 'keyway',
    scheduleDelayMs: integer(environment, 'OTEL_BSP_SCHEDULE_DELAY', 5000, 10, 3_600_000),
    maxQueueSize,
    maxBatchSize: Math.min(maxQueueSize, integer(environment, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1, 1_000_000)),
    timeoutMs: integer(environment, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', integer(environment, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10_000, 1, 600_000), 1, 600_000),
  };
}
