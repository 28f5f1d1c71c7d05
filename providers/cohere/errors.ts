import type { KeywayError } from '../../core/errors.ts';
import { bodySummary, parseJsonOrUndefined, parseRetryAfter, reasonFromStatus, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { FailureReason } from '../../core/spec/vocabulary.ts';

const PROVIDER = 'cohere';

/** Cohere's 400 for an over-long prompt: "too many tokens: total number of tokens in the prompt cannot exceed …". */
const CONTEXT_LENGTH_MESSAGE = /too many tokens|context length|context window|prompt is too long/i;

interface CohereErrorBody {
  id?: string;
  message?: string;
  [extra: string]: unknown;
}

/** Classifies a Cohere error answer. Cohere's body is a bare `{id?, message}`, without OpenAI's wrapper. */
export function classifyCohereError(status: number, bodyText: string, headers: Headers): KeywayError {
  const body = parseJsonOrUndefined(bodyText) as CohereErrorBody | undefined;
  const message = typeof body?.message === 'string' ? body.message : bodySummary(bodyText, headers.get('content-type'));
  return upstreamFailure({
    provider: PROVIDER,
    status,
    reason: reasonFor(status, message),
    message,
    nativeCode: status,
    retryAfterSeconds: parseRetryAfter(headers),
  });
}

function reasonFor(status: number, message: string): FailureReason {
  if (status === 400 && CONTEXT_LENGTH_MESSAGE.test(message)) return 'context_length_exceeded';
  // 498: a deny-listed token in the request or the answer (Cohere's "invalid token" status).
  if (status === 498) return 'content_filtered';
  // 499: Cohere cancelled the request on its side; nothing the caller did, so another provider may serve it.
  if (status === 499) return 'server_error';
  if (status === 422) return 'invalid_request';
  return reasonFromStatus(status);
}

/** A generation that failed after the stream started (`message-end` with `error` or an ERROR/TIMEOUT finish). */
export function cohereGenerationFailure(message: string | undefined, finishReason: string | undefined): KeywayError {
  const reason: FailureReason = finishReason === 'TIMEOUT' ? 'timeout' : 'server_error';
  const detail = message ?? (finishReason === 'TIMEOUT' ? 'the generation timed out' : 'the generation failed');
  return upstreamFailure({ provider: PROVIDER, status: undefined, reason, message: detail, nativeType: finishReason });
}
