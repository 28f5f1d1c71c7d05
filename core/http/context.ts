import type { Endpoint, Principal, RequestContext } from '../plugin.ts';
import type { ChatRequest } from '../vocabulary.ts';

export function createRequestContext(requestId: string, request: Request, principal: Principal, endpoint: Endpoint, body: ChatRequest, clientIp: string | undefined): RequestContext {
  return {
    requestId,
    startedAt: performance.now(),
    endpoint,
    headers: request.headers,
    clientIp,
    principal,
    request: body,
    projectTag: request.headers.get('x-project-tag') ?? undefined,
    keys: undefined,
    resolution: undefined,
    candidates: [],
    attempts: [],
    served: undefined,
    warnings: [],
    responseHeaders: {},
    state: new Map(),
  };
}
