import type { KeywayError } from '../../core/errors.ts';
import { bodySummary, parseJsonOrUndefined, parseRetryAfter, reasonFromStatus, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { FailureReason } from '../../core/spec/vocabulary.ts';

export const PROVIDER_NAME = 'google';

interface GoogleErrorDetail {
  '@type'?: string;
  reason?: string;
  retryDelay?: string;
  violations?: Array<{ quotaId?: string; quotaMetric?: string; quotaValue?: string }>;
}

interface GoogleError {
  code?: number;
  message?: string;
  status?: string;
  details?: GoogleErrorDetail[];
}

const CONTEXT_LENGTH = /input token count .*exceeds|exceeds the maximum number of tokens/i;

/** Classifies a Gemini error answer (`{error:{code,message,status,details}}`, reference §3.5). */
export function classifyGeminiError(status: number, bodyText: string, headers: Headers): KeywayError {
  const error = readGoogleError(parseJsonOrUndefined(bodyText));
  return upstreamFailure({
    provider: PROVIDER_NAME,
    status,
    reason: reasonFor(status, error),
    message: error?.message ?? bodySummary(bodyText, headers.get('content-type')),
    nativeType: error?.status,
    nativeCode: error?.code,
    retryAfterSeconds: retryDelaySeconds(error) ?? parseRetryAfter(headers),
  });
}

/** An `{"error":…}` object on a `data:` line after the stream had started (HTTP 200 already sent). */
export function classifyGeminiStreamError(payload: unknown): KeywayError {
  const error = readGoogleError(payload);
  const code = typeof error?.code === 'number' ? error.code : 500;
  return upstreamFailure({
    provider: PROVIDER_NAME,
    status: undefined,
    reason: reasonFor(code, error),
    message: error?.message ?? 'error in stream',
    nativeType: error?.status,
    nativeCode: error?.code,
    retryAfterSeconds: retryDelaySeconds(error),
  });
}

/**
 * A stream whose every candidate finished with MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL or
 * TOO_MANY_TOOL_CALLS (reference §7.5: surface as an error): a server-side failure, as the same
 * answer not streamed is.
 */
export function geminiGenerationFailure(finishReason: string, finishMessage: string | undefined): KeywayError {
  const message = `the generation ended with ${finishReason}${finishMessage === undefined ? '' : `: ${finishMessage}`}`;
  return upstreamFailure({ provider: PROVIDER_NAME, status: undefined, reason: 'server_error', message, nativeType: finishReason });
}

/** Streaming without `alt=sse` wraps errors in an array; accept both shapes. */
function readGoogleError(body: unknown): GoogleError | undefined {
  const candidate = Array.isArray(body) ? body[0] : body;
  if (candidate === null || typeof candidate !== 'object') return undefined;
  const error = (candidate as { error?: unknown }).error;
  return error !== null && typeof error === 'object' ? (error as GoogleError) : undefined;
}

function reasonFor(status: number, error: GoogleError | undefined): FailureReason {
  const details = Array.isArray(error?.details) ? error.details : [];
  const message = error?.message ?? '';
  if (details.some((detail) => detail.reason?.startsWith('API_KEY_'))) return 'auth_error';
  if (status === 400) {
    if (CONTEXT_LENGTH.test(message)) return 'context_length_exceeded';
    // Billing required or free tier unavailable in the region: the key cannot serve until its
    // owner acts, like OpenAI's insufficient_quota.
    if (error?.status === 'FAILED_PRECONDITION') return 'quota_exceeded';
    return 'invalid_request';
  }
  if (status === 429) return isLongQuotaExhaustion(details) ? 'quota_exceeded' : 'rate_limit';
  // 499 CANCELLED from Google's side is not the caller's fault; another attempt may succeed.
  if (status === 499) return 'server_error';
  return reasonFromStatus(status);
}

/**
 * A per-day quota (or a limit of zero, which free tiers use for models they exclude) does not
 * recover within a retry window, unlike per-minute limits.
 */
function isLongQuotaExhaustion(details: GoogleErrorDetail[]): boolean {
  return details.some(
    (detail) =>
      detail['@type']?.endsWith('google.rpc.QuotaFailure') === true &&
      (detail.violations ?? []).some((violation) => /PerDay/i.test(violation.quotaId ?? '') || violation.quotaValue === '0'),
  );
}

/** `google.rpc.RetryInfo.retryDelay` is a protobuf Duration in JSON: `"47s"`, `"1.5s"`. */
function retryDelaySeconds(error: GoogleError | undefined): number | undefined {
  const details = Array.isArray(error?.details) ? error.details : [];
  for (const detail of details) {
    if (!detail['@type']?.endsWith('google.rpc.RetryInfo') || typeof detail.retryDelay !== 'string') continue;
    const match = /^(\d+(?:\.\d+)?)s$/.exec(detail.retryDelay.trim());
    if (match) return Number(match[1]);
  }
  return undefined;
}
