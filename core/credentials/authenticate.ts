import type { ConfigSnapshots } from './snapshot.ts';
import { KeywayError } from '../errors.ts';
import { redactClientKey } from './secret-shapes.ts';
import { redactedExcerpt } from '../logger.ts';
import type { ManagementGuard, Principal, PrincipalRole, SessionArrival, SessionCredentialResolver } from '../spec/plugin.ts';
import { hashGatewayKey } from './secrets.ts';

/** The bearer key of a request: `Authorization: Bearer …`, or `x-api-key` as Anthropic clients send it. */
export function bearerKey(headers: Headers): string | undefined {
  const authorization = headers.get('authorization');
  if (authorization !== null) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  return headers.get('x-api-key') ?? undefined;
}

/**
 * The principal a request's bearer key stands for, or 401 `invalid_api_key`; nothing else about the
 * request is judged yet: `admit` does that, in its one order.
 */
export function recognise(store: ConfigSnapshots, headers: Headers): Principal {
  const key = bearerKey(headers);
  if (key === undefined || key.length > 512) throw new KeywayError('invalid_api_key');
  return known(store.current.principalsByHash.get(hashGatewayKey(key)));
}

/** `recognise`, then the X-Team-ID check: for callers that have no client address to guard with. */
export function authenticate(store: ConfigSnapshots, headers: Headers): Principal {
  return checkTeamHeader(recognise(store, headers), headers);
}

/**
 * `recognise` for management routes: a bearer key first; without one, a session a plugin resolves (a
 * dashboard's cookie plus its anti-CSRF header) to the hash of the gateway key it was opened with.
 * Inference routes never call this: their path stays bearer-only.
 */
export function recogniseManagement(store: ConfigSnapshots, headers: Headers, sessions: ReadonlyArray<{ value: SessionCredentialResolver }>): Principal {
  if (sessions.length === 0 || bearerKey(headers) !== undefined) return recognise(store, headers);
  for (const { value: resolve } of sessions) {
    const keyHash = resolve(headers);
    if (keyHash !== undefined) return known(store.current.principalsByHash.get(keyHash));
  }
  throw new KeywayError('invalid_api_key');
}

/** `recogniseManagement`, then the X-Team-ID check: for callers that have no client address to guard with. */
export function authenticateManagement(store: ConfigSnapshots, headers: Headers, sessions: ReadonlyArray<{ value: SessionCredentialResolver }>): Principal {
  return checkTeamHeader(recogniseManagement(store, headers, sessions), headers);
}

/**
 * recogniseManagement, and when no bearer key was sent and no resolver knew the session: once more
 * after the first plugin that has something to wait for (a session another worker opened, still on
 * the cluster bus) says it arrived. Refused as before when nothing arrives.
 */
export async function recogniseManagementAwaiting(
  store: ConfigSnapshots,
  headers: Headers,
  sessions: ReadonlyArray<{ value: SessionCredentialResolver }>,
  arrivals: ReadonlyArray<{ value: SessionArrival }>,
): Promise<Principal> {
  try {
    return recogniseManagement(store, headers, sessions);
  } catch (error) {
    if (!(error instanceof KeywayError) || error.code !== 'invalid_api_key' || bearerKey(headers) !== undefined) throw error;
    for (const { value: arrival } of arrivals) {
      const waiting = arrival(headers);
      if (waiting !== undefined && (await waiting)) return recogniseManagement(store, headers, sessions);
    }
    throw error;
  }
}

function known(principal: Principal | undefined): Principal {
  if (principal === undefined) throw new KeywayError('invalid_api_key');
  return principal;
}

/** A member key implies its team; a different X-Team-ID is a mistake worth refusing loudly. */
export function checkTeamHeader(principal: Principal, headers: Headers): Principal {
  const teamHeader = headers.get('x-team-id');
  if (teamHeader !== null && principal.teamId !== undefined && teamHeader !== principal.teamId) {
    // The header is the client's text: a secret pasted into it must not come back in the answer.
    // The request's own X-Provider-Key is redacted before the cut, which could leave too little of it to find;
    // the rest is cut with a margin past the longest key (redactedExcerpt), so no key cut in two shows its start.
    const shown = redactedExcerpt(redactClientKey(teamHeader, headers), 100);
    throw new KeywayError('permission_denied', { detail: `This key belongs to team ${principal.teamId}, not ${shown}.` });
  }
  return principal;
}

/**
 * The one order every call is judged in once its key is known, whatever the route (management, the
 * plugins' routes, inference, GET /metrics, a dashboard sign-in, a WebSocket upgrade): first where it
 * comes from (every plugin's guard: the ip-allowlist policy's `allowed_ips`), then what else the
 * request says (an X-Team-ID its key contradicts), then the role. A key refused for its address so
 * learns no more than that 403 `ip_not_allowed`: not its role, not its team, not whether its body would
 * pass (QA15 F4: GET /metrics answered "needs the operator role; the key has admin" from anywhere).
 */
export function admit(
  principal: Principal,
  headers: Headers,
  guards: ReadonlyArray<{ value: ManagementGuard }>,
  clientAddress: () => string | undefined,
  role?: PrincipalRole,
  teamKeys = false,
): Principal {
  for (const { value: guard } of guards) guard(principal, clientAddress);
  checkTeamHeader(principal, headers);
  if (role !== undefined) requireRole(principal, role, teamKeys);
  return principal;
}

const RANK: Record<PrincipalRole, number> = { viewer: 0, developer: 1, admin: 2, operator: 3 };

/**
 * Refuses a principal below `role`. An `admin` call acts on the whole account, so a team member's key
 * with the admin role (principal.teamId set) is refused too, unless the route takes team keys and
 * keeps them to their own team itself (`teamKeys`): a team's admin manages its team, never the
 * account's keys, settings, analytics or exports. Failing closed here means a new admin route cannot
 * forget the check.
 */
export function requireRole(principal: Principal, role: PrincipalRole, teamKeys = false): void {
  if (RANK[principal.role] < RANK[role]) {
    throw new KeywayError('permission_denied', { detail: `This call needs the ${role} role; the key has ${principal.role}.` });
  }
  if (role === 'admin' && principal.teamId !== undefined && !teamKeys) {
    throw new KeywayError('permission_denied', {
      detail: `This call acts on the whole account; a team member's key (team ${principal.teamId}) may not make it. Use an account admin key.`,
    });
  }
}
