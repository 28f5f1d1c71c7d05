// The Anthropic error body: what every failure on `/v1/messages` is written as, so Anthropic SDKs
// raise their own error classes. Keyway's code is kept beside Anthropic's type. Also the `request-id`
// header those SDKs read.

import type { ErrorDescriptor } from '../../core/spec/vocabulary.ts';

const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'invalid_request_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  // Not `overloaded_error`: Keyway's 503s (no usable key, keys rejected, storage down) are not capacity.
  503: 'api_error',
  504: 'timeout_error',
};

/**
 * Anthropic keeps `overloaded_error` for its transient 529, and clients branching on the type back off
 * and retry it: so it is said only for a provider's own overload (an upstream 529 or 503, or
 * Anthropic's `overloaded_error` event inside a stream, which has no status) and Keyway's queue for
 * upstream slots being full, never for a configuration problem such as every key rejected.
 */
function anthropicType(descriptor: ErrorDescriptor): string {
  const upstreamStatus = descriptor.extra?.upstream_status;
  if (upstreamStatus === 529 || upstreamStatus === 503 || descriptor.extra?.upstream_type === 'overloaded_error' || descriptor.code === 'gateway_busy')
    return 'overloaded_error';
  return ANTHROPIC_TYPES[descriptor.status] ?? 'api_error';
}

/**
 * Chat fields the translation fills from a Messages field of another name (request.ts): a refusal that
 * names one, Keyway's own or a provider's ("Invalid 'stop': array too long"), names the field the
 * client sent instead.
 */
const MESSAGES_FIELD_BY_CHAT_FIELD: Readonly<Record<string, string>> = { stop: 'stop_sequences' };

/** The core's 401 names the header OpenAI clients send; Anthropic's send `x-api-key`, which Keyway takes as well (QA seed L3). */
const BEARER_ADVICE = '"Authorization: Bearer <key>"';
const MESSAGES_KEY_ADVICE = '"x-api-key: <key>" (or "Authorization: Bearer <key>")';

function messageInClientTerms(descriptor: ErrorDescriptor): string {
  if (descriptor.code === 'invalid_api_key') return descriptor.message.replace(BEARER_ADVICE, MESSAGES_KEY_ADVICE);
  const chatField = descriptor.param;
  const clientField = typeof chatField === 'string' ? MESSAGES_FIELD_BY_CHAT_FIELD[chatField] : undefined;
  if (clientField === undefined) return descriptor.message;
  return descriptor.message.replaceAll(`'${chatField}'`, `'${clientField}'`);
}

export function anthropicErrorBody(descriptor: ErrorDescriptor, requestId: string): Record<string, unknown> {
  return {
    type: 'error',
    // Extras first: they add fields but can never replace the dialect's own.
    error: { ...descriptor.extra, type: anthropicType(descriptor), message: messageInClientTerms(descriptor), code: descriptor.code },
    request_id: requestId,
  };
}

/**
 * Anthropic names its request id `request-id` (no `x-`), and its SDKs read that header into
 * `error.requestID` and a message's `_request_id`; Keyway's own id (`X-Request-Id`) is copied there, so
 * a support ticket quoting the SDK's id finds Keyway's logs and usage row.
 */
export function withAnthropicRequestId(response: Response): Response {
  const requestId = response.headers.get('x-request-id');
  if (requestId !== null) response.headers.set('request-id', requestId);
  return response;
}

/** An error the core raises for these routes outside their handler (a wrong method), in Anthropic's shape with its `request-id`. */
export function anthropicRefusal(descriptor: ErrorDescriptor, requestId: string): Response {
  return new Response(JSON.stringify(anthropicErrorBody(descriptor, requestId)), {
    status: descriptor.status,
    headers: { 'content-type': 'application/json', 'request-id': requestId },
  });
}
