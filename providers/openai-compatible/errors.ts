import type { KeywayError } from '../../core/errors.ts';
import { bodySummary, parseJsonOrUndefined, parseRetryAfter, reasonFromStatus, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { FailureReason } from '../../core/spec/vocabulary.ts';

interface OpenAIErrorBody {
  error?: { message?: string; type?: string; code?: string | number | null; param?: string | null } | string;
  message?: string;
}

/** Classifies an OpenAI (or OpenAI-compatible) error answer by its status and error code. */
export function classifyOpenAIError(provider: string, status: number, bodyText: string, headers: Headers): KeywayError {
  const body = parseJsonOrUndefined(bodyText) as OpenAIErrorBody | undefined;
  const error = typeof body?.error === 'object' ? body.error : undefined;
  const message =
    error?.message ?? (typeof body?.error === 'string' ? body.error : undefined) ?? body?.message ?? bodySummary(bodyText, headers.get('content-type'));
  const code = error?.code ?? undefined;
  return upstreamFailure({
    provider,
    status,
    reason: reasonFor(status, code === null ? undefined : String(code), error?.type),
    message,
    nativeType: error?.type,
    nativeCode: code ?? undefined,
    retryAfterSeconds: parseRetryAfter(headers),
    param: error?.param,
  });
}

function reasonFor(status: number, code: string | undefined, type: string | undefined): FailureReason {
  if (code === 'insufficient_quota' || type === 'insufficient_quota') return 'quota_exceeded';
  if (code === 'context_length_exceeded' || code === 'string_above_max_length') return 'context_length_exceeded';
  if (code === 'content_filter' || code === 'content_policy_violation') return 'content_filtered';
  if (code === 'model_not_found') return 'model_not_available';
  if (code === 'invalid_api_key') return 'auth_error';
  return reasonFromStatus(status);
}

/** An error object that arrives on a `data:` line in the middle of a stream. */
export function classifyOpenAIStreamError(provider: string, payload: Record<string, unknown>): KeywayError {
  const error = (payload.error ?? {}) as { message?: string; type?: string; code?: string | null };
  const reason: FailureReason = error.type === 'rate_limit_exceeded' || error.code === 'rate_limit_exceeded' ? 'rate_limit' : 'server_error';
  return upstreamFailure({
    provider,
    status: undefined,
    reason,
    message: error.message ?? 'error in stream',
    nativeType: error.type,
    nativeCode: error.code ?? undefined,
  });
}
