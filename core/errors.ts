import { redactedExcerpt, redactStrings } from './credentials/secret-shapes.ts';
import type { ErrorDescriptor, FailureReason } from './spec/vocabulary.ts';
import { retryAfterHeader } from './wire/retry-after.ts';

interface ErrorTableRow {
  status: number;
  type: string;
  template: string;
  /**
   * false: the answer carries `x-should-retry: false`. The official OpenAI and Anthropic SDKs retry
   * every 429 that has no Retry-After; this header is the one signal both read to stop.
   */
  retryable?: false;
}

/**
 * The one error table. Every error a client sees is built from a row here, so status, type and
 * message stay consistent across endpoints. Templates use `{name}` placeholders.
 */
export const ERROR_TABLE = {
  invalid_json: { status: 400, type: 'invalid_request_error', template: 'The request body is not valid JSON: {detail}' },
  invalid_request: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  invalid_field: { status: 400, type: 'invalid_request_error', template: "Invalid value for '{param}': {detail}" },
  missing_field: { status: 400, type: 'invalid_request_error', template: "Missing required field '{param}'." },
  unsupported_feature: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  sensitive_content_blocked: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  upstream_invalid_request: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  content_filtered: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  invalid_api_key: { status: 401, type: 'authentication_error', template: 'Invalid or missing API key. Send it as "Authorization: Bearer <key>".' },
  budget_exceeded: { status: 402, type: 'budget_exceeded', template: '{detail}' },
  permission_denied: { status: 403, type: 'permission_error', template: '{detail}' },
  byok_access_denied: { status: 403, type: 'permission_error', template: '{detail}' },
  model_not_allowed: { status: 403, type: 'permission_error', template: '{detail}' },
  provider_not_allowed: { status: 403, type: 'permission_error', template: '{detail}' },
  project_tag_required: { status: 403, type: 'permission_error', template: '{detail}' },
  project_not_allowed: { status: 403, type: 'permission_error', template: '{detail}' },
  ip_not_allowed: { status: 403, type: 'permission_error', template: '{detail}' },
  /** The upstream address policy (core/wire/upstream-policy.ts) refused the address: never a provider failure. */
  upstream_not_allowed: { status: 403, type: 'permission_error', template: '{detail}' },
  approval_required: { status: 403, type: 'permission_error', template: '{detail}' },
  /** A provider-hosted tool (web search, code execution, a remote MCP server) the team may not use. */
  tool_not_allowed: { status: 403, type: 'permission_error', template: '{detail}' },
  /** A team with a budget asked for a model that has no price: its worst case cannot be reserved. */
  model_unpriced: { status: 403, type: 'permission_error', template: '{detail}' },
  not_found: { status: 404, type: 'not_found_error', template: '{detail}' },
  model_not_found: { status: 404, type: 'not_found_error', template: '{detail}' },
  /**
   * A `previous_response_id` (Responses API) that names no response the caller may continue: 404 with
   * OpenAI's own type and code, so its SDKs raise NotFoundError and clients that start over on this
   * code (sending the whole conversation) do so through Keyway too.
   */
  previous_response_not_found: { status: 404, type: 'invalid_request_error', template: '{detail}' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', template: 'Method {method} is not allowed on {path}.' },
  /**
   * A request body that did not arrive in full within `KEYWAY_BODY_TIMEOUT_MS` (core/http/kit/body.ts):
   * the client's doing, so an invalid request, answered with `Connection: close`.
   */
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    template: 'The request body did not arrive in full within {limit} ms: it was sent too slowly.',
  },
  conflict: { status: 409, type: 'invalid_request_error', template: '{detail}' },
  request_too_large: { status: 413, type: 'request_too_large', template: 'The request body is {size} bytes; the limit is {limit} bytes.' },
  rotation_test_failed: { status: 422, type: 'invalid_request_error', template: '{detail}' },
  /** A provider refused the admin key an account gave for its usage and cost reports (plugins/reconciliation). */
  admin_key_rejected: { status: 422, type: 'invalid_request_error', template: '{detail}' },
  /** A transport Keyway does not offer yet (the Responses API's WebSocket): the client falls back to HTTP. */
  upgrade_required: { status: 426, type: 'invalid_request_error', template: '{detail}' },
  websocket_connection_limit_reached: { status: 400, type: 'invalid_request_error', template: '{detail}' },
  /**
   * The client went away before its answer: a stream it closed, or a body it stopped sending. Nobody
   * reads this answer; the status (nginx's 499) is for the usage row, the metrics and the logs.
   */
  client_closed: { status: 499, type: 'client_closed', template: '{detail}' },
  rate_limited: { status: 429, type: 'rate_limit_error', template: '{detail}' },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', template: '{detail}' },
  /** Exhausted quota or billing (OpenAI insufficient_quota, Anthropic's credit balance, Cohere 402): retrying cannot help. */
  upstream_quota_exceeded: { status: 429, type: 'rate_limit_error', template: '{detail}', retryable: false },
  internal_error: { status: 500, type: 'api_error', template: 'Keyway hit an internal error ({detail}). The request id is {requestId}.' },
  plugin_error: { status: 500, type: 'api_error', template: "Plugin '{plugin}' failed during {stage}: {detail}" },
  upstream_error: { status: 502, type: 'upstream_error', template: '{detail}' },
  /** The provider refused the key (401/403): retrying cannot help until the key is fixed or replaced. */
  provider_key_rejected: { status: 502, type: 'upstream_error', template: '{detail}', retryable: false },
  no_provider_available: { status: 503, type: 'no_provider_available', template: '{detail}' },
  not_ready: { status: 503, type: 'api_error', template: '{detail}' },
  /**
   * The database did not answer (unreachable, or SQLite busy past its timeout): the call could not be
   * completed and may be retried (core/storage-availability.ts). Never the driver's words or class.
   */
  storage_unavailable: {
    status: 503,
    type: 'api_error',
    template: "Keyway's database cannot be reached right now, so this call could not be completed. Try again in a few seconds.",
  },
  /**
   * No client sees it: the usage row of a request whose upstream call was under way when the gateway
   * process died (SIGKILL, OOM kill, crash), booked at Keyway's estimate when its usage journal is
   * replayed (core/accounting/in-flight-marks.ts). 503 as a stream cut by the shutdown drain.
   */
  gateway_stopped: { status: 503, type: 'api_error', template: '{detail}' },
  /** Keyway's own queue for upstream slots timed out (core/lifecycle/upstream-slots.ts); never a provider's failure. */
  gateway_busy: { status: 503, type: 'api_error', template: '{detail}' },
  upstream_timeout: { status: 504, type: 'upstream_timeout', template: '{detail}' },
  /** An inbound request that already passed through a Keyway (its `Via` names one): answering it would loop. */
  loop_detected: { status: 508, type: 'invalid_request_error', template: '{detail}' },
} as const satisfies Record<string, ErrorTableRow>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface KeywayErrorOptions {
  param?: string | null;
  reason?: FailureReason;
  retryAfterSeconds?: number;
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
  cause?: unknown;
  /** Replaces the templated message (used when re-raising a descriptor). */
  message?: string;
}

/** What a message says for the request id when nobody filled it in. */
const UNKNOWN_REQUEST_ID = '-';

/**
 * The longest client-supplied value (a model name, a field's name, a header) a message repeats: a
 * longer one is cut with an ellipsis, so no message echoes unbounded input back (a 180 KB model name
 * answered in full, and redacted in full first, held a worker for seconds).
 */
export const ECHOED_LIMIT = 256;
/** The longest message, `param` and extra string an error answer carries: a backstop past every message's own words. */
const MESSAGE_LIMIT = 4096;

/** `value` as a message may repeat it: at most ECHOED_LIMIT characters, the last an ellipsis when cut. */
export function echoed(value: string): string {
  return value.length <= ECHOED_LIMIT ? value : `${value.slice(0, ECHOED_LIMIT - 1)}…`;
}

/** `{detail}` is Keyway's own sentence (its echoed parts already cut); every other value may be the client's. */
function fillTemplate(template: string, values: Record<string, string | number | undefined>): string {
  return template.replace(/\{(\w+)\}/g, (_match, name: string) => {
    const value = String(values[name] ?? '');
    return name === 'detail' ? value : echoed(value);
  });
}

export class KeywayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly reason: FailureReason | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  /**
   * Set when the message names the request id but the error was raised where it is not known (the key
   * vault): the answer fills it in, so the message and `X-Request-Id` agree.
   */
  private readonly awaitingRequestId: Record<string, string | number | undefined> | undefined;

  constructor(code: ErrorCode, values: Record<string, string | number | undefined> = {}, options: KeywayErrorOptions = {}) {
    const row: ErrorTableRow = ERROR_TABLE[code];
    const awaiting = options.message === undefined && values.requestId === undefined && row.template.includes('{requestId}');
    super(
      options.message ?? fillTemplate(row.template, awaiting ? { ...values, requestId: UNKNOWN_REQUEST_ID } : values),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.awaitingRequestId = awaiting ? values : undefined;
    this.name = 'KeywayError';
    this.code = code;
    this.status = row.status;
    this.type = row.type;
    this.param = options.param ?? (typeof values.param === 'string' ? values.param : null);
    this.reason = options.reason;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.extra = options.extra;
    this.headers = options.headers;
  }

  /**
   * The error as it is answered. Its texts may quote what a client sent (a model, a field's name, a
   * header), and a careless client sends keys in the wrong field: anything shaped like a key, or equal
   * to a secret in play, is replaced here, the one door every error answer passes through.
   */
  /** The message, naming `requestId` where it was raised without one. */
  messageFor(requestId: string | undefined): string {
    if (this.awaitingRequestId === undefined || requestId === undefined) return this.message;
    return fillTemplate(ERROR_TABLE[this.code].template, { ...this.awaitingRequestId, requestId });
  }

  toDescriptor(requestId?: string): ErrorDescriptor {
    const message = this.messageFor(requestId);
    const descriptor: ErrorDescriptor = {
      status: this.status,
      type: this.type,
      code: this.code,
      message: redactedExcerpt(message, MESSAGE_LIMIT),
      param: this.param === null ? null : redactedExcerpt(this.param, ECHOED_LIMIT),
    };
    if (this.reason !== undefined) descriptor.reason = this.reason;
    if (this.retryAfterSeconds !== undefined) descriptor.retryAfterSeconds = this.retryAfterSeconds;
    if (this.extra !== undefined) descriptor.extra = redactStrings(this.extra, 4, MESSAGE_LIMIT) as Record<string, unknown>;
    return descriptor;
  }
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_TABLE, code);
}

/** Rebuilds an error that travelled as a descriptor (a stream's error part). */
export function errorFromDescriptor(descriptor: ErrorDescriptor): KeywayError {
  const code: ErrorCode = isErrorCode(descriptor.code) ? descriptor.code : 'upstream_error';
  return new KeywayError(
    code,
    {},
    {
      message: descriptor.message,
      param: descriptor.param ?? null,
      reason: descriptor.reason,
      retryAfterSeconds: descriptor.retryAfterSeconds,
      extra: descriptor.extra,
    },
  );
}

/** Shorthand for the most common error: a request field with a wrong value. */
export function invalidField(param: string, detail: string): KeywayError {
  return new KeywayError('invalid_field', { param, detail }, { param });
}

export function descriptorFromError(error: unknown, requestId: string): ErrorDescriptor {
  if (error instanceof KeywayError) return error.toDescriptor(requestId);
  const name = error instanceof Error ? error.name : typeof error;
  return new KeywayError('internal_error', { detail: name, requestId }).toDescriptor();
}

/** The OpenAI error body: `{"error": {"message", "type", "code", "param"}}` plus documented extras. */
export function openAIErrorBody(descriptor: ErrorDescriptor): { error: Record<string, unknown> } {
  return {
    // Extras first: they add fields (provider, attempts…) but can never replace the table's own.
    error: {
      ...descriptor.extra,
      message: descriptor.message,
      type: descriptor.type,
      code: descriptor.code,
      param: descriptor.param ?? null,
    },
  };
}

export function errorHeaders(descriptor: ErrorDescriptor): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  // Whatever set the wait (a provider, a policy, a plugin), a client is never told more than a day.
  const retryAfter = retryAfterHeader(descriptor.retryAfterSeconds);
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  if (isErrorCode(descriptor.code) && (ERROR_TABLE[descriptor.code] as ErrorTableRow).retryable === false) headers['x-should-retry'] = 'false';
  return headers;
}
