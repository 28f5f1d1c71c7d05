import { admit, recogniseManagementAwaiting } from '../../credentials/authenticate.ts';
import type { Principal, PrincipalRole } from '../../spec/plugin.ts';
import type { Runtime } from '../../runtime.ts';
import { noteActor } from './audit-trail.ts';
import { errorAsResponse, requestIdOf } from './respond.ts';
import { holdBodyToSecretFields, type SecretFields } from './body-secrets.ts';
import { refuseUnknownParameters } from './query.ts';
import { requestUrl } from './request-url.ts';
import { refuseUndeclaredBody, type BodyLimits } from './body.ts';
import type { TSchema } from '@sinclair/typebox';

export type GuardedHandler = (runtime: Runtime, request: Request, principal: Principal, parameters: Record<string, string>) => Promise<Response> | Response;

/** Every answer carries the request's id, success or not, so a client can quote it. */
export function withRequestId(response: Response, requestId: string): Response {
  if (!response.headers.has('x-request-id')) response.headers.set('x-request-id', requestId);
  return response;
}

type ClientAddress = (request: Request) => string | undefined;

/** Each runtime's client address resolver, set by the app that serves it (core/http/app.ts). */
const clientAddresses = new WeakMap<Runtime, ClientAddress>();

export function serveClientAddresses(runtime: Runtime, clientAddress: ClientAddress): void {
  clientAddresses.set(runtime, clientAddress);
}

/**
 * The caller of a management call: its key (or session) recognised, then admitted in the one order
 * every call follows (`admit`, core/credentials/authenticate.ts): the plugins' guards (an address
 * outside the key's allowed_ips, say), the X-Team-ID check, the role. `teamKeys` lets a team member's
 * admin key through to a route that keeps it to its own team.
 */
export async function authenticateManagementCall(runtime: Runtime, request: Request, role: PrincipalRole, teamKeys = false): Promise<Principal> {
  const principal = await recogniseManagementAwaiting(runtime.snapshots, request.headers, runtime.plugins.sessionCredentials, runtime.plugins.sessionArrivals);
  noteActor(request, principal, role);
  return admitCall(runtime, request, principal, role, teamKeys);
}

/**
 * `admit` for a call outside the lifecycle, with the client's address read only if a guard asks for
 * it: every management route, and the inference routes that answer without a model call (GET
 * /v1/models), which name no `role`.
 */
export function admitCall(runtime: Runtime, request: Request, principal: Principal, role?: PrincipalRole, teamKeys = false): Principal {
  const resolve = clientAddresses.get(runtime);
  let address: string | undefined;
  let resolved = false;
  const clientAddress = (): string | undefined => {
    if (!resolved) {
      address = resolve?.(request);
      resolved = true;
    }
    return address;
  };
  return admit(principal, request.headers, runtime.plugins.managementGuards, clientAddress, role, teamKeys);
}

/** What a management route takes beyond its role: its body, the body fields made for keys, the query parameters of a GET. */
export interface ManagementInput {
  /**
   * The JSON body the route takes (its schema, also what the OpenAPI document shows). A route without
   * one takes no body: the core refuses any that holds something before the route runs.
   */
  body?: TSchema;
  /** Body fields that legitimately hold a key (body-secrets.ts); every other one holding a key is refused. */
  secretFields?: SecretFields;
  /** A GET's query parameters; any other is refused. Default: none. `'any'` leaves them to the handler. */
  query?: readonly string[] | 'any';
  /** Of `query`, the parameters a GET may repeat (a list); any other given twice is refused. */
  repeatableQuery?: readonly string[];
}

/**
 * Holds an authenticated management call to what its route takes: a GET's unknown or repeated query
 * parameter is refused here (a misspelt filter ignored, or a second value dropped, answers the wrong
 * data with a 200), a body sent to a route that declares none is refused (dropped unread, it was a
 * request half done: refuseUndeclaredBody), and a body is checked for misplaced keys when it is read.
 * In the core, so a new route cannot forget any of them.
 */
export async function admitManagementCall(request: Request, limits: BodyLimits, input: ManagementInput = {}): Promise<void> {
  if (request.method === 'GET') {
    if (input.query !== 'any') refuseUnknownParameters(requestUrl(request).searchParams, input.query ?? [], input.repeatableQuery);
    return;
  }
  holdBodyToSecretFields(request, input.secretFields);
  if (input.body === undefined) await refuseUndeclaredBody(request, limits);
}

/** Authenticates, checks the role, and turns every failure into the spec's error shape. */
export function guarded(role: PrincipalRole, handler: GuardedHandler, input: ManagementInput = {}) {
  return async (runtime: Runtime, request: Request, parameters: Record<string, string> = {}): Promise<Response> => {
    const requestId = requestIdOf(request);
    try {
      const principal = await authenticateManagementCall(runtime, request, role);
      await admitManagementCall(request, runtime.config, input);
      return withRequestId(await handler(runtime, request, principal, parameters), requestId);
    } catch (error) {
      return errorAsResponse(error, requestId, runtime.logger);
    }
  };
}
