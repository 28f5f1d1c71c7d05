// What a team's admin member (a member key with the `admin` role) may give the keys it issues: nothing
// its own key does not have. An account admin set the lead's environment, allowed_ips and role; a lead
// that could mint a production key, a key reachable from anywhere, or a second admin key (one that
// decides the lead's own approvals) would lift those limits by adding a member. Account admin keys and
// the operator key have no team, and keep full power.

import type { Principal } from '../../core/spec/plugin.ts';
import type { ErrorKit } from '../../core/spec/services.ts';
import { cidrWithin, parseAllowedRange, type Cidr } from '../../core/wire/ip-address.ts';
import type { MemberBody, ReissueChange } from './schema.ts';
import type { MemberRow } from './records.ts';

const ACCOUNT_ADMIN_HINT = 'An account admin key can do it.';

/** A key whose limits bound the keys it issues: a team's admin member. */
function isTeamKey(issuer: Principal): boolean {
  return issuer.teamId !== undefined;
}

/** The issuer's own allowed_ips, when set: `[]` or none means every address, so nothing to bound by. */
function allowedIpsOf(issuer: Principal): string[] | undefined {
  const list = issuer.settings.allowed_ips;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  return list.filter((entry): entry is string => typeof entry === 'string');
}

/** A list for a message: the first few entries, not all 256. */
function shown(list: readonly string[]): string {
  const head = list.slice(0, 5).join(', ');
  return list.length > 5 ? `${head}, … (${list.length} entries)` : head;
}

/**
 * The entries of `list` that may allow an address `bounds` does not. Either side's entries that today's
 * grammar refuses (a zone id stored by an older release) count against the caller: outside on `list`,
 * allowing nothing in `bounds`.
 */
function entriesOutside(list: readonly string[], bounds: readonly string[]): string[] {
  const ranges = bounds.map(parseAllowedRange).filter((range): range is Cidr => range !== undefined);
  return list.filter((entry) => {
    const range = parseAllowedRange(entry);
    return range === undefined || !ranges.some((outer) => cidrWithin(range, outer));
  });
}

/**
 * The member to add, held to what the issuing key may give: a team's admin member adds developers and
 * viewers only, of its own environment and within its own allowed_ips, which a member it adds without
 * them inherits. Refused with 403 `permission_denied` saying what and why; an account admin's unchanged.
 */
export function memberWithinIssuer(errors: ErrorKit, issuer: Principal, member: MemberBody): MemberBody {
  if (!isTeamKey(issuer)) return member;
  if (member.role === 'admin') {
    throw errors.create(
      'permission_denied',
      {
        detail: `A team's admin member adds developers and viewers only: a member with the admin role manages the team and decides its approvals, so only an account admin may add one. ${ACCOUNT_ADMIN_HINT}`,
      },
      { param: 'role' },
    );
  }
  const bounded: MemberBody = { ...member };
  const environment = issuer.environment;
  if (environment !== undefined) {
    if (member.environment !== undefined) refuseOtherEnvironment(errors, environment, member.environment, `leave environment out to inherit '${environment}'`);
    bounded.environment = environment;
  }
  const bounds = allowedIpsOf(issuer);
  if (bounds !== undefined) {
    if (member.allowed_ips === undefined) bounded.allowed_ips = [...bounds];
    else refuseWiderIps(errors, member.allowed_ips, bounds);
  }
  return bounded;
}

/** A team key's members belong to its environment: `asked` (null: none) is refused unless it is that one. */
function refuseOtherEnvironment(errors: ErrorKit, environment: string, asked: string | null, hint: string): void {
  if (asked === environment) return;
  throw errors.create(
    'permission_denied',
    {
      detail: `This key belongs to environment '${environment}', so the member keys it issues do too: ${asked === null ? 'none' : `'${asked}'`} is refused (${hint}). ${ACCOUNT_ADMIN_HINT}`,
    },
    { param: 'environment' },
  );
}

function refuseWiderIps(errors: ErrorKit, list: readonly string[], bounds: readonly string[], hint = "leave allowed_ips out to inherit this key's list"): void {
  const why = `This key may be used from ${shown(bounds)} only, so the member keys it issues may be too (${hint}). ${ACCOUNT_ADMIN_HINT}`;
  if (list.length === 0) {
    throw errors.create('permission_denied', { detail: `An empty allowed_ips allows every address. ${why}` }, { param: 'allowed_ips' });
  }
  const outside = entriesOutside(list, bounds);
  const first = outside[0];
  if (first !== undefined) {
    const index = list.indexOf(first);
    throw errors.create(
      'permission_denied',
      { detail: `allowed_ips[${index}] ${first} reaches beyond this key's own list. ${why}` },
      { param: `allowed_ips[${index}]` },
    );
  }
}

/**
 * The settings a re-issued key gets: the member's, with what the body changes (`environment: null`
 * removes it; `allowed_ips: []` allows every address, as on add).
 */
export function reissuedSettings(settings: Readonly<Record<string, unknown>>, change: ReissueChange): Record<string, unknown> {
  const next: Record<string, unknown> = { ...settings };
  if (change.allowed_ips !== undefined) next.allowed_ips = change.allowed_ips;
  if (change.environment === null) delete next.environment;
  else if (change.environment !== undefined) next.environment = change.environment;
  return next;
}

/**
 * A re-issue gives its caller the member's new key: a team's admin member may re-issue only keys it
 * could have added (no admin's, its own included, and none of another environment or reaching more
 * addresses than its own). What the body changes is held to the bounds of an added member's (naming
 * the field), then the key's resulting settings to the issuer's own; a setting the body leaves is kept
 * as it is, never narrowed without a word. `member` has its settings as they will be.
 */
export function checkReissueWithinIssuer(errors: ErrorKit, issuer: Principal, member: MemberRow, change: ReissueChange = {}): void {
  if (!isTeamKey(issuer)) return;
  const refuse = (what: string): never => {
    throw errors.create('permission_denied', {
      detail: `${member.email}'s key ${what}, so a team's admin member cannot re-issue it. ${ACCOUNT_ADMIN_HINT}`,
    });
  };
  if (member.role === 'admin') refuse('is an admin key (it manages the team and decides its approvals)');
  const hint = "leave it out to keep the member's";
  if (issuer.environment !== undefined && change.environment !== undefined) refuseOtherEnvironment(errors, issuer.environment, change.environment, hint);
  const changeBounds = allowedIpsOf(issuer);
  if (changeBounds !== undefined && change.allowed_ips !== undefined) refuseWiderIps(errors, change.allowed_ips, changeBounds, hint);
  const environment = issuer.environment;
  const memberEnvironment = typeof member.settings.environment === 'string' ? member.settings.environment : undefined;
  if (environment !== undefined && memberEnvironment !== environment) {
    refuse(
      memberEnvironment === undefined
        ? `may use provider keys of every environment, and this key belongs to '${environment}'`
        : `belongs to environment '${memberEnvironment}', and this key to '${environment}'`,
    );
  }
  const bounds = allowedIpsOf(issuer);
  if (bounds === undefined) return;
  const list = Array.isArray(member.settings.allowed_ips) ? member.settings.allowed_ips.filter((entry): entry is string => typeof entry === 'string') : [];
  if (list.length === 0) refuse(`may be used from every address, and this key from ${shown(bounds)} only`);
  const outside = entriesOutside(list, bounds);
  if (outside.length > 0) refuse(`may be used from ${shown(outside)}, beyond this key's own allowed_ips (${shown(bounds)})`);
}
