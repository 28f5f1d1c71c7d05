import type { Endpoint, RequestContext } from '../spec/lifecycle.ts';
import type { Principal } from '../spec/principal.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';

/** What `context.request` holds until the body is parsed (only unparseable requests keep it). */
export function unparsedRequest(): ChatRequest {
  return { model: '', messages: [] };
}

/** `clientAddress` runs only if a plugin reads `clientIp`: most requests never need it. */
export function createRequestContext(
  requestId: string,
  request: Request,
  principal: Principal,
  endpoint: Endpoint,
  clientAddress: () => string | undefined,
  body: ChatRequest = unparsedRequest(),
): RequestContext {
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
    teamId: principal.teamId,
    request: body,
    bodyText: undefined,
    projectTag: request.headers.get('x-project-tag') ?? undefined,
    keys: undefined,
    resolution: undefined,
    candidates: [],
    attempts: [],
    served: undefined,
    warnings: [],
    responseHeaders: {},
    state: new Map(),
    outcome: undefined,
    usageAudit: undefined,
    leases: undefined,
  };
}
