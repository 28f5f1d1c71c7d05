import { authenticateManagementAwaiting, requireRole } from '../../credentials/authenticate.ts';
import type { Principal, PrincipalRole } from '../../spec/plugin.ts';
import type { Runtime } from '../../runtime.ts';
import { noteActor } from './audit-trail.ts';
import { errorAsResponse, requestIdOf } from './respond.ts';

export type GuardedHandler = (runtime: Runtime, request: Request, principal: Principal, parameters: Record<string, string>) => Promise<Response> | Response;

/** Every answer carries the request's id, success or not, so a client can quote it. */
export function withRequestId(response: Response, requestId: string): Response {
  if (!response.headers.has('x-request-id')) response.headers.set('x-request-id', requestId);
  return response;
}

/** Authenticates, checks the role, and turns every failure into the spec's error shape. */
export function guarded(role: PrincipalRole, handler: GuardedHandler) {
  return async (runtime: Runtime, request: Request, parameters: Record<string, string> = {}): Promise<Response> => {
    const requestId = requestIdOf(request);
    try {
      const principal = await authenticateManagementAwaiting(
        runtime.snapshots,
        request.headers,
        runtime.plugins.sessionCredentials,
        runtime.plugins.sessionArrivals,
      );
      noteActor(request, principal, role);
      requireRole(principal, role);
      return withRequestId(await handler(runtime, request, principal, parameters), requestId);
    } catch (error) {
      return errorAsResponse(error, requestId, runtime.logger);
    }
  };
}
