import type { ConfigSnapshots } from './snapshot.ts';
import { KeywayError } from '../errors.ts';
import { redactClientKey } from './secret-shapes.ts';
import { redactSecrets } from '../logger.ts';
import type { Principal, PrincipalRole, SessionArrival, SessionCredentialResolver } from '../spec/plugin.ts';
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

export function authenticate(store: ConfigSnapshots, headers: Headers): Principal {
  const key = bearerKey(headers);
  if (key === undefined || key.length > 512) throw new KeywayError('invalid_api_key');
  return principalOf(store.current.principalsByHash.get(hashGatewayKey(key)), headers);
}

/**
 * For management routes: a bearer key first; without one, a session a plugin resolves (a dashboard's
 * cookie plus its anti-CSRF header) to the hash of the gateway key it was opened with. Inference routes
 * never call this: their path stays bearer-only.
 */
export function authenticateManagement(store: ConfigSnapshots, headers: Headers, sessions: ReadonlyArray<{ value: SessionCredentialResolver }>): Principal {
  if (sessions.length === 0 || bearerKey(headers) !== undefined) return authenticate(store, headers);
  for (const { value: resolve } of sessions) {
    const keyHash = resolve(headers);
    if (keyHash !== undefined) return principalOf(store.current.principalsByHash.get(keyHash), headers);
  }
  throw new KeywayError('invalid_api_key');
}

/**
 * authenticateManagement, and when no bearer key was sent and no resolver knew the session: once more
 * after the first plugin that has something to wait for (a session another worker opened, still on
 * the cluster bus) says it arrived. Refused as before when nothing arrives.
 */
export async function authenticateManagementAwaiting(
  store: ConfigSnapshots,
  headers: Headers,
  sessions: ReadonlyArray<{ value: SessionCredentialResolver }>,
  arrivals: ReadonlyArray<{ value: SessionArrival }>,
): Promise<Principal> {
  try {
    return authenticateManagement(store, headers, sessions);
  } catch (error) {
    if (!(error instanceof KeywayError) || error.code !== 'invalid_api_key' || bearerKey(headers) !== undefined) throw error;
    for (const { value: arrival } of arrivals) {
      const waiting = arrival(headers);
      if (waiting !== undefined && (await waiting)) return authenticateManagement(store, headers, sessions);
    }
    throw error;
  }
}

function principalOf(principal: Principal | undefined, headers: Headers): Principal {
  if (principal === undefined) throw new KeywayError('invalid_api_key');
  const teamHeader = headers.get('x-team-id');
  // A member key implies its team; a different X-Team-ID is a mistake worth refusing loudly.
  if (teamHeader !== null && principal.teamId !== undefined && teamHeader !== principal.teamId) {
    // The header is the client's text: a secret pasted into it must not come back in the answer.
    // The request's own X-Provider-Key is redacted before the cut, which could leave too little of it to find.
    const shown = redactSecrets(redactClientKey(teamHeader, headers).slice(0, 100));
    throw new KeywayError('permission_denied', { detail: `This key belongs to team ${principal.teamId}, not ${shown}.` });
  }
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
