import { descriptorFromError, errorHeaders, KeywayError, openAIErrorBody } from '../errors.ts';
import type { Logger } from '../logger.ts';

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export function requestIdOf(request: Request): string {
  return request.headers.get('x-request-id')?.slice(0, 100).replace(/[^\w.-]/g, '') || `req_${crypto.randomUUID().replaceAll('-', '')}`;
}

/** Any failure as the spec's OpenAI-shaped error; unexpected ones are logged, never shown in detail. */
export function errorAsResponse(error: unknown, requestId: string, logger: Logger): Response {
  if (!(error instanceof KeywayError)) logger.error({ requestId, error: error instanceof Error ? error.stack : String(error) }, 'unexpected error');
  const descriptor = descriptorFromError(error, requestId);
  const headers = { ...errorHeaders(descriptor), 'x-request-id': requestId, ...(error instanceof KeywayError ? error.headers : {}) };
  return new Response(JSON.stringify(openAIErrorBody(descriptor)), { status: descriptor.status, headers });
}
