// What a finished request becomes in OTLP/JSON: one SERVER span for the request and one CLIENT span,
// its child, per upstream attempt, with the OpenTelemetry GenAI attributes. The account hook only
// captures a small record (ids, timings, usage, the attempts); ids and JSON are made at export time.
// Never a key, a prompt, a header or free error text: error codes and reasons only.

import type { AttemptRecord, RequestContext, RequestOutcome, ServedBy } from '../../core/spec/lifecycle.ts';
import type { FinishReason, Usage } from '../../core/spec/vocabulary.ts';
import { operationName, providerName } from '../metrics/labels.ts';

export interface RequestRecord {
  requestId: string;
  endpoint: string;
  accountId: string;
  teamId: string | undefined;
  /** performance.now() values. */
  startedAt: number;
  endedAt: number;
  status: number;
  errorCode: string | undefined;
  streamed: boolean;
  usage: Usage | undefined;
  usageEstimated: boolean;
  finishReason: FinishReason | undefined;
  costUsd: number | undefined;
  /** The model and provider the request resolved to, before any fallback. */
  resolvedProvider: string | undefined;
  resolvedModel: string | undefined;
  served: ServedBy | undefined;
  attempts: readonly AttemptRecord[];
  /** The incoming W3C traceparent, when it had the right length. */
  traceparent: string | undefined;
}

/** The account hook's whole work: a record of plain values (the context itself is not kept). */
export function captureRequest(context: RequestContext, outcome: RequestOutcome): RequestRecord {
  const traceparent = context.headers.get('traceparent');
  return {
    requestId: context.requestId,
    endpoint: context.endpoint,
    accountId: context.principal.accountId,
    teamId: context.teamId,
    startedAt: context.startedAt,
    endedAt: context.startedAt + outcome.latencyMs,
    status: outcome.status,
    errorCode: outcome.error?.code,
    streamed: outcome.streamed,
    usage: outcome.usage,
    usageEstimated: outcome.usageEstimated === true,
    finishReason: outcome.finishReason,
    costUsd: outcome.costUsd,
    resolvedProvider: context.resolution?.provider,
    resolvedModel: context.resolution?.model,
    served: context.served,
    attempts: context.attempts,
    traceparent: traceparent !== null && traceparent.length === 55 ? traceparent : undefined,
  };
}

/** Spans one record becomes: the request, each failed attempt, and the serving attempt. */
export function spanCount(record: RequestRecord): number {
  return 1 + record.attempts.length + (record.served === undefined ? 0 : 1);
}

type AttributeValue = string | number | boolean | string[];
interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpAttribute[];
  status: { code: number; message?: string };
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

function randomHex(bytes: number): string {
  const buffer = crypto.getRandomValues(new Uint8Array(bytes));
  let text = '';
  for (const byte of buffer) text += byte.toString(16).padStart(2, '0');
  return text;
}

/** The caller's trace and span, when its traceparent is valid (version 00, neither id all zeros). */
export function parseTraceparent(header: string | undefined): { traceId: string; parentSpanId: string } | undefined {
  const match = header === undefined ? null : TRACEPARENT.exec(header);
  if (match === null) return undefined;
  const [, traceId, parentSpanId] = match as unknown as [string, string, string];
  return traceId === ZERO_TRACE || parentSpanId === ZERO_SPAN ? undefined : { traceId, parentSpanId };
}

/** performance.now() → Unix nanoseconds as a decimal string (JSON numbers cannot hold them exactly). */
export function unixNanos(performanceTime: number): string {
  const milliseconds = performance.timeOrigin + performanceTime;
  const whole = Math.floor(milliseconds);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((milliseconds - whole) * 1e6))).toString();
}

function attribute(key: string, value: AttributeValue): OtlpAttribute {
  if (Array.isArray(value)) return { key, value: { arrayValue: { values: value.map((item) => ({ stringValue: item })) } } };
  if (typeof value === 'string') return { key, value: { stringValue: value } };
  if (typeof value === 'boolean') return { key, value: { boolValue: value } };
  return Number.isInteger(value) ? { key, value: { intValue: String(value) } } : { key, value: { doubleValue: value } };
}

class Attributes {
  readonly list: OtlpAttribute[] = [];
  set(key: string, value: AttributeValue | undefined): this {
    if (value !== undefined && value !== '') this.list.push(attribute(key, value));
    return this;
  }

  /** A double even when the value happens to be whole (a cost of 0, a duration of 1 s). */
  double(key: string, value: number | undefined): this {
    if (value !== undefined && Number.isFinite(value)) this.list.push({ key, value: { doubleValue: value } });
    return this;
  }
}

/** Model names pass through the caller's check (catalog known, nothing secret-shaped); `_other` otherwise. */
export type ModelLabel = (provider: string | undefined, model: string | undefined) => string | undefined;

/** Client-chosen text that is exported (the X-Request-Id): kept only when redaction leaves it unchanged. */
export type TextCheck = (text: string) => string;

function finishReasons(reason: FinishReason | undefined): string[] | undefined {
  if (reason === undefined) return undefined;
  const raw = reason.raw !== undefined && /^[A-Za-z0-9_.-]{1,40}$/.test(reason.raw) ? reason.raw : undefined;
  return [raw ?? reason.unified];
}

function usageAttributes(attributes: Attributes, usage: Usage | undefined): void {
  if (usage === undefined) return;
  attributes
    .set('gen_ai.usage.input_tokens', usage.inputTokens)
    .set('gen_ai.usage.output_tokens', usage.outputTokens)
    .set('gen_ai.usage.cache_read.input_tokens', usage.cachedInputTokens > 0 ? usage.cachedInputTokens : undefined)
    .set('gen_ai.usage.cache_creation.input_tokens', usage.cacheWriteInputTokens > 0 ? usage.cacheWriteInputTokens : undefined)
    .set('gen_ai.usage.reasoning.output_tokens', usage.reasoningTokens > 0 ? usage.reasoningTokens : undefined);
}

const spanName = (operation: string, model: string | undefined): string => (model === undefined ? operation : `${operation} ${model}`);

/** The record's spans: the request first, then its attempts in order. */
export function spansOf(record: RequestRecord, modelLabel: ModelLabel, checkText: TextCheck = (text) => text): OtlpSpan[] {
  const caller = parseTraceparent(record.traceparent);
  const traceId = caller?.traceId ?? randomHex(16);
  const requestSpanId = randomHex(8);
  const operation = operationName(record.endpoint);
  const served = record.served;
  const last = record.attempts[record.attempts.length - 1];
  const provider = served?.provider ?? last?.provider ?? record.resolvedProvider;
  const requestModel = modelLabel(record.resolvedProvider ?? provider, record.resolvedModel ?? served?.model ?? last?.model);
  const responseModel = served === undefined ? undefined : modelLabel(served.provider, served.model);
  const fallbacks = record.attempts.length + (served === undefined ? 0 : 1) - 1;
  const request = new Attributes()
    .set('gen_ai.operation.name', operation)
    .set('gen_ai.provider.name', provider === undefined ? undefined : providerName(provider))
    .set('gen_ai.system', provider === undefined ? undefined : providerName(provider))
    .set('gen_ai.request.model', requestModel)
    .set('gen_ai.response.model', responseModel)
    .set('gen_ai.response.finish_reasons', finishReasons(record.finishReason))
    .set('http.response.status_code', record.status)
    .set('error.type', record.errorCode === undefined ? undefined : safeCode(record.errorCode))
    .set('keyway.request_id', checkText(record.requestId))
    .set('keyway.endpoint', record.endpoint)
    .set('keyway.account_id', record.accountId)
    .set('keyway.team_id', record.teamId)
    .set('keyway.streamed', record.streamed)
    .set('keyway.fallback_attempts', Math.max(0, fallbacks))
    .double('keyway.cost_usd', record.costUsd)
    .set('keyway.unpriced', served !== undefined && record.usage !== undefined && record.costUsd === undefined ? true : undefined)
    .set('keyway.usage_estimated', record.usageEstimated ? true : undefined);
  usageAttributes(request, record.usage);
  const spans: OtlpSpan[] = [
    {
      traceId,
      spanId: requestSpanId,
      ...(caller === undefined ? {} : { parentSpanId: caller.parentSpanId }),
      name: spanName(operation, requestModel),
      kind: SPAN_KIND_SERVER,
      startTimeUnixNano: unixNanos(record.startedAt),
      endTimeUnixNano: unixNanos(record.endedAt),
      attributes: request.list,
      status: record.errorCode === undefined ? { code: STATUS_UNSET } : { code: STATUS_ERROR, message: safeCode(record.errorCode) },
    },
  ];
  record.attempts.forEach((attempt, index) => {
    const model = modelLabel(attempt.provider, attempt.model);
    const startedAt = attempt.startedAt ?? record.startedAt;
    const attributes = attemptAttributes(operation, attempt.provider, model, attempt.keyId, attempt.owner, index + 1)
      .set('error.type', safeCode(attempt.reason))
      .set('http.response.status_code', attempt.status);
    spans.push({
      traceId,
      spanId: randomHex(8),
      parentSpanId: requestSpanId,
      name: spanName(operation, model),
      kind: SPAN_KIND_CLIENT,
      startTimeUnixNano: unixNanos(startedAt),
      endTimeUnixNano: unixNanos(startedAt + attempt.durationMs),
      attributes: attributes.list,
      status: { code: STATUS_ERROR, message: safeCode(attempt.reason) },
    });
  });
  if (served !== undefined) {
    const startedAt = served.startedAt ?? record.startedAt;
    const attributes = attemptAttributes(operation, served.provider, responseModel, served.keyId, served.owner, record.attempts.length + 1)
      .set('gen_ai.response.model', responseModel)
      .set('gen_ai.response.finish_reasons', finishReasons(record.finishReason))
      .double('gen_ai.response.time_to_first_chunk', served.firstByteAt === undefined ? undefined : Math.max(0, served.firstByteAt - startedAt) / 1000);
    usageAttributes(attributes, record.usage);
    if (record.errorCode !== undefined) attributes.set('error.type', safeCode(record.errorCode));
    spans.push({
      traceId,
      spanId: randomHex(8),
      parentSpanId: requestSpanId,
      name: spanName(operation, responseModel),
      kind: SPAN_KIND_CLIENT,
      startTimeUnixNano: unixNanos(startedAt),
      endTimeUnixNano: unixNanos(Math.max(startedAt, record.endedAt)),
      attributes: attributes.list,
      status: record.errorCode === undefined ? { code: STATUS_UNSET } : { code: STATUS_ERROR, message: safeCode(record.errorCode) },
    });
  }
  return spans;
}

function attemptAttributes(operation: string, provider: string, model: string | undefined, keyId: string, owner: string, attempt: number): Attributes {
  return new Attributes()
    .set('gen_ai.operation.name', operation)
    .set('gen_ai.provider.name', providerName(provider))
    .set('gen_ai.system', providerName(provider))
    .set('gen_ai.request.model', model)
    .set('keyway.provider', provider)
    .set('keyway.provider_key_id', keyId)
    .set('keyway.key_owner', owner)
    .set('keyway.attempt', attempt);
}

/** Error codes and failure reasons are identifiers; anything else is not exported. */
function safeCode(code: string): string {
  return /^[a-z0-9_]{1,64}$/.test(code) ? code : '_other';
}

/** The OTLP/JSON export request for a batch of records. */
export function exportRequest(
  records: readonly RequestRecord[],
  serviceName: string,
  version: string,
  modelLabel: ModelLabel,
  checkText: TextCheck = (text) => text,
): string {
  const spans: OtlpSpan[] = [];
  for (const record of records) for (const span of spansOf(record, modelLabel, checkText)) spans.push(span);
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [attribute('service.name', serviceName), attribute('service.version', version), attribute('telemetry.sdk.name', 'keyway')] },
        scopeSpans: [{ scope: { name: 'keyway', version }, spans }],
      },
    ],
  });
}
