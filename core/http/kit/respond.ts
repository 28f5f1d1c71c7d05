import { descriptorFromError, errorHeaders, KeywayError, openAIErrorBody } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { noteAnswer } from './audit-trail.ts';
import { clientKeyOf, looksLikeSecret } from '../../credentials/secret-shapes.ts';

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  const text = JSON.stringify(body);
  const response = new Response(text, { status, headers: { 'content-type': 'application/json', ...headers } });
  noteAnswer(response, text);
  return response;
}

// A random prefix per process and a counter: unique across restarts, and cheaper than a UUID per request.
const REQUEST_ID_PREFIX = `req_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
let requestCounter = 0;

/** What a client's request id is cut to and cleaned of. */
function cleanedRequestId(text: string): string {
  return text.slice(0, 100).replace(/[^\w.-]/g, '');
}

/**
 * The client's `X-Request-Id` when it is usable, else one of Keyway's own. A key sent there (the id is
 * echoed in every answer and kept on the usage row) is not taken: the request gets an id of Keyway's.
 * That includes the request's own X-Provider-Key, whatever its shape.
 */
export function requestIdOf(request: Request): string {
  const given = request.headers.get('x-request-id');
  if (given !== null) {
    const cleaned = cleanedRequestId(given);
    // Both: cleaning can glue a key to a word (`Bearer kw_…` → `Bearerkw_…`), which no shape matches.
    if (cleaned.length > 0 && !looksLikeSecret(cleaned) && !looksLikeSecret(given) && !holdsOwnKey(given, cleaned, request.headers)) return cleaned;
  }
  return newRequestId();
}

/** One of Keyway's own request ids. */
export function newRequestId(): string {
  requestCounter++;
  return `${REQUEST_ID_PREFIX}${requestCounter.toString(36).padStart(6, '0')}`;
}

/** The id as sent or as cleaned holds the request's X-Provider-Key (cleaned too: `ab+cd…` is kept as `abcd…`). */
function holdsOwnKey(given: string, cleaned: string, headers: Headers): boolean {
  const key = clientKeyOf(headers);
  if (key === undefined) return false;
  const cleanedKey = cleanedRequestId(key);
  return given.includes(key) || (cleanedKey.length > 0 && cleaned.includes(cleanedKey));
}

/** Any failure as the spec's OpenAI-shaped error; unexpected ones are logged, never shown in detail. */
export function errorAsResponse(error: unknown, requestId: string, logger: Logger): Response {
  if (!(error instanceof KeywayError)) logger.error({ requestId, error: error instanceof Error ? error.stack : String(error) }, 'unexpected error');
  else if (error.code === 'storage_unavailable') {
    // The client is told only that the database is away; the log keeps the driver's words.
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    logger.warn({ requestId, cause }, 'the database could not be reached: answered 503 storage_unavailable');
  }
  const descriptor = descriptorFromError(error, requestId);
  const headers = { ...errorHeaders(descriptor), 'x-request-id': requestId, ...(error instanceof KeywayError ? error.headers : {}) };
  return new Response(JSON.stringify(openAIErrorBody(descriptor)), { status: descriptor.status, headers });
}
