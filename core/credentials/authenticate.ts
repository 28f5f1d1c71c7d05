import type { ConfigSnapshots } from './snapshot.ts';
import { KeywayError } from '../errors.ts';
import type { Principal, PrincipalRole } from '../spec/plugin.ts';
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
  const principal = store.current.principalsByHash.get(hashGatewayKey(key));
  if (principal === undefined) throw new KeywayError('invalid_api_key');
  const teamHeader = headers.get('x-team-id');
  // A member key implies its team; a different X-Team-ID is a mistake worth refusing loudly.
  if (teamHeader !== null && principal.teamId !== undefined && teamHeader !== principal.teamId) {
    throw new KeywayError('permission_denied', { detail: `This key belongs to team ${principal.teamId}, not ${teamHeader}.` });
  }
  return principal;
}

const RANK: Record<PrincipalRole, number> = { viewer: 0, developer: 1, admin: 2, operator: 3 };

export function requireRole(principal: Principal, role: PrincipalRole): void {
  if (RANK[principal.role] < RANK[role]) {
    throw new KeywayError('permission_denied', { detail: `This call needs the ${role} role; the key has ${principal.role}.` });
  }
}
