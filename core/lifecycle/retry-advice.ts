// Whether a client should repeat a failed request itself. The official OpenAI and Anthropic SDKs
// retry a 408, 409, 429 and every 5xx twice by default, unless the answer says `x-should-retry:
// false` (docs/api.md, "Upstream failures").

import type { RequestContext } from '../spec/lifecycle.ts';
import { FAILURE_REASONS, type ErrorDescriptor } from '../spec/vocabulary.ts';

/** Reasons an upstream gives: an attempt with one of them reached a provider (not Keyway's own refusal or bug). */
const UPSTREAM_REASONS: ReadonlySet<string> = new Set(FAILURE_REASONS);

function upstreamAttempts(context: RequestContext): number {
  let count = 0;
  for (const attempt of context.attempts) if (UPSTREAM_REASONS.has(attempt.reason)) count++;
  return count;
}

/**
 * A deadline failure (504 `upstream_timeout`) after Keyway itself made two or more upstream attempts
 * (fallbacks across keys or providers, or `routing.retries` passes) is not for the client to repeat:
 * the request's own routing already retried, each attempt waited out a deadline, and an SDK's two
 * retries would run the whole plan twice more (QA14, finding 11: 3 upstream calls and 7.3 s for one
 * client call). More retries are asked for in `routing` (`retries`, `fallback_chain`), where Keyway
 * spaces them and holds them to `total_timeout_ms`. A single attempt's timeout is left to the SDK,
 * as a provider's own would be: its retry is then the only one. So are rate limits (the SDK waits
 * the `Retry-After` Keyway passes on) and fast failures such as a 502, which cost a retry little.
 */
export function shouldNotRetry(context: RequestContext, descriptor: ErrorDescriptor): boolean {
  return descriptor.code === 'upstream_timeout' && upstreamAttempts(context) >= 2;
}
