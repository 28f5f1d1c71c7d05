import type { KeywayError } from '../../core/errors.ts';
import { bodySummary, parseJsonOrUndefined, parseRetryAfter, reasonFromStatus, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { FailureReason } from '../../core/spec/vocabulary.ts';

const PROVIDER = 'perplexity';

const CONTEXT_LENGTH_MESSAGE = /context length|context window|too many tokens|maximum.*tokens.*exceed/i;

interface PerplexityErrorBody {
  /** Sonar: `{message, type, code: <int HTTP status>}`. */
  error?: { message?: string; type?: string; code?: number | string | null } | string;
  /** FastAPI validation (422): `[{loc, msg, type}]`, or a plain string. */
  detail?: Array<{ loc?: unknown[]; msg?: string; type?: string }> | string;
  message?: string;
}

/** Classifies a Perplexity error answer: Sonar's `{error:{…}}`, FastAPI's `{detail}` or plain text. */
export function classifyPerplexityError(status: number, bodyText: string, headers: Headers): KeywayError {
  const body = parseJsonOrUndefined(bodyText) as PerplexityErrorBody | undefined;
  const error = typeof body?.error === 'object' && body.error !== null ? body.error : undefined;
  const message =
    error?.message ??
    (typeof body?.error === 'string' ? body.error : undefined) ??
    detailMessage(body?.detail) ??
    body?.message ??
    bodySummary(bodyText, headers.get('content-type'));
  return upstreamFailure({
    provider: PROVIDER,
    status,
    reason: reasonFor(status, error?.type, message),
    message,
    nativeType: error?.type,
    nativeCode: error?.code ?? undefined,
    retryAfterSeconds: parseRetryAfter(headers),
  });
}

function detailMessage(detail: PerplexityErrorBody['detail']): string | undefined {
  if (typeof detail === 'string') return detail;
  if (!Array.isArray(detail) || detail.length === 0) return undefined;
  return detail.map((item) => (Array.isArray(item.loc) ? `${item.loc.join('.')}: ${item.msg ?? ''}` : (item.msg ?? ''))).join('; ');
}

function reasonFor(status: number, type: string | undefined, message: string): FailureReason {
  if (type === 'invalid_model') return 'model_not_available';
  if (type === 'insufficient_quota') return 'quota_exceeded';
  if (type === 'context_length_exceeded' || (status === 400 && CONTEXT_LENGTH_MESSAGE.test(message))) return 'context_length_exceeded';
  return reasonFromStatus(status);
}

/** An error that arrives inside a stream (`event: error`, or an error object on a data line). */
export function classifyPerplexityStreamError(data: string): KeywayError {
  const body = parseJsonOrUndefined(data) as PerplexityErrorBody | undefined;
  const error = typeof body?.error === 'object' && body.error !== null ? body.error : undefined;
  const message =
    error?.message ??
    (typeof body?.error === 'string' ? body.error : undefined) ??
    body?.message ??
    (data.trim() === '' ? 'error in stream' : bodySummary(data));
  const status = typeof error?.code === 'number' ? error.code : undefined;
  const reason: FailureReason = status === undefined ? 'server_error' : reasonFor(status, error?.type, message);
  return upstreamFailure({ provider: PROVIDER, status, reason, message, nativeType: error?.type, nativeCode: error?.code ?? undefined });
}
