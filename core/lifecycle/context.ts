import type { Endpoint, Principal, RequestContext } from '../spec/plugin.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';

/** `clientAddress` runs only if a plugin reads `clientIp`: most requests never need it. */
export function createRequestContext(requestId: string, request: Request, principal: Principal, endpoint: Endpoint, body: ChatRequest, clientAddress: () => string | undefined): RequestContext {
  let clientIp: string | undefined;
  let resolved = false;
  return {
    get clientIp() {
      if (!resolved) {
        clientIp = clientAddress();
        resolved = true;
      }
      return clientIp;
    },
    requestId,
    startedAt: performance.now(),
    endpoint,
    headers: request.headers,
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
