import type { KeywayError } from '../../core/errors.ts';
import { bodySummary, parseJsonOrUndefined, parseRetryAfter, reasonFromStatus, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { FailureReason } from '../../core/spec/vocabulary.ts';

const PROVIDER = 'anthropic';

interface AnthropicErrorBody {
  type?: string;
  error?: { type?: string; message?: string };
  request_id?: string;
}

// Anthropic reports these as plain 400 invalid_request_error; only the message tells them apart.
const CONTEXT_LENGTH_MESSAGE = /prompt is too long|exceeds? (the )?(model'?s? )?context|context (window|limit)|too many (input )?tokens/i;
const BILLING_MESSAGE = /credit balance|billing|spend limit|usage limits?/i;

/** The reason a native error type stands for, when its message does not say more. */
const REASON_BY_TYPE: Record<string, FailureReason> = {
  authentication_error: 'auth_error',
  permission_error: 'auth_error',
  billing_error: 'quota_exceeded',
  not_found_error: 'model_not_available',
  request_too_large: 'context_length_exceeded',
  rate_limit_error: 'rate_limit',
  api_error: 'server_error',
  overloaded_error: 'server_error',
  timeout_error: 'timeout',
  invalid_request_error: 'invalid_request',
};

function reasonFor(status: number | undefined, type: string | undefined, message: string): FailureReason {
  if (CONTEXT_LENGTH_MESSAGE.test(message)) return 'context_length_exceeded';
  if (type === 'billing_error' || status === 402 || BILLING_MESSAGE.test(message)) return 'quota_exceeded';
  const byType = type === undefined ? undefined : REASON_BY_TYPE[type];
  // invalid_request_error also covers "other 4xx" codes, so the status says more than the type there.
  if (byType !== undefined && byType !== 'invalid_request') return byType;
  // 529 is Anthropic's "overloaded": a server-side condition worth falling back on.
  if (status !== undefined) return status === 529 ? 'server_error' : reasonFromStatus(status);
  return byType ?? 'server_error';
}

/** Classifies an Anthropic error answer (`{type:"error", error:{type, message}}`) by status, type and message. */
export function classifyAnthropicError(status: number, bodyText: string, headers: Headers): KeywayError {
  const body = parseJsonOrUndefined(bodyText) as AnthropicErrorBody | undefined;
  const error = typeof body?.error === 'object' && body.error !== null ? body.error : undefined;
  const message = error?.message ?? bodySummary(bodyText, headers.get('content-type'));
  return upstreamFailure({
    provider: PROVIDER,
    status,
    reason: reasonFor(status, error?.type, message),
    message,
    nativeType: error?.type,
    retryAfterSeconds: parseRetryAfter(headers),
  });
}

/** An `event: error` frame, which can arrive after the HTTP 200 was sent. */
export function classifyAnthropicStreamError(payload: Record<string, unknown>): KeywayError {
  const error = (typeof payload.error === 'object' && payload.error !== null ? payload.error : {}) as { type?: string; message?: string };
  const message = error.message ?? 'error in stream';
  return upstreamFailure({ provider: PROVIDER, status: undefined, reason: reasonFor(undefined, error.type, message), message, nativeType: error.type });
}
