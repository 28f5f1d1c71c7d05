// IP restrictions: `allowed_ips` on the calling gateway key (account and member keys alike) and on
// the team. The client address must match every list that is set. The address is the socket's, or
// `X-Forwarded-For` only behind `KEYWAY_TRUSTED_PROXIES` (the core computes it: core/http/client-address.ts).

import { canonicalIp, cidrContains, parseAllowedRange, parseIp, type Cidr, type IpAddress } from '../../core/wire/ip-address.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { TEAMS_SECTION, teamOf, type TeamsSection } from '../../plugins/teams/types.ts';

export const IP_ALLOWLIST_POLICY = 'ip-allowlist';

/**
 * An allow-list entry: `10.0.0.0/8`, `2001:db8::/32` or a single address; bits past the prefix are
 * ignored (core/wire/ip-address.ts). A zone id is refused when written, but releases before session 12
 * stored and matched `fe80::1%eth0` as `fe80::1`: a stored one keeps matching that way rather than
 * locking its key or team out after the upgrade.
 */
export function parseEntry(text: string): Cidr | undefined {
  const trimmed = text.trim();
  const zone = trimmed.indexOf('%');
  if (zone === -1) return parseAllowedRange(trimmed);
  const slash = trimmed.indexOf('/', zone);
  return parseAllowedRange(trimmed.slice(0, zone) + (slash === -1 ? '' : trimmed.slice(slash)));
}

export interface CompiledList {
  ranges: Cidr[];
  /** Entries that are neither an address nor a range: they match nothing. */
  invalid: string[];
}

const compiledLists = new WeakMap<readonly unknown[], CompiledList>();

/** Compiled once per list object (the snapshot replaces a list when it changes). */
export function compileList(list: readonly unknown[]): CompiledList {
  let compiled = compiledLists.get(list);
  if (compiled !== undefined) return compiled;
  const ranges: Cidr[] = [];
  const invalid: string[] = [];
  for (const entry of list) {
    const range = typeof entry === 'string' ? parseEntry(entry) : undefined;
    if (range === undefined) invalid.push(String(entry));
    else ranges.push(range);
  }
  compiled = { ranges, invalid };
  compiledLists.set(list, compiled);
  return compiled;
}

export function listAllows(list: CompiledList, address: IpAddress | undefined): boolean {
  if (address === undefined) return false;
  const canonical = canonicalIp(address);
  return list.ranges.some((range) => cidrContains(range, canonical));
}

/** A list is set when it is a non-empty array; `[]` or no list means no restriction. */
function setList(value: unknown): readonly unknown[] | undefined {
  return Array.isArray(value) && value.length > 0 ? value : undefined;
}

export const ipAllowlistPolicy = definePlugin({
  name: IP_ALLOWLIST_POLICY,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  description: 'allowed_ips on gateway keys and teams: 403 ip_not_allowed',
  dependencies: ['teams'],
  setup({ services, logger }) {
    const warned = new WeakSet<CompiledList>();
    /** Refuses `clientIp` unless every list that is set allows it: the key's, then its team's. */
    const check = (keyList: readonly unknown[] | undefined, teamList: readonly unknown[] | undefined, clientIp: string | undefined): void => {
      const address = clientIp === undefined ? undefined : parseIp(clientIp);
      for (const [owner, list] of [
        ['key', keyList],
        ['team', teamList],
      ] as const) {
        if (list === undefined) continue;
        const compiled = compileList(list);
        if (compiled.invalid.length > 0 && !warned.has(compiled)) {
          warned.add(compiled);
          logger.warn(
            { entries: compiled.invalid.length },
            `allowed_ips of a ${owner} holds entries that are not addresses or CIDR ranges; they match nothing`,
          );
        }
        if (listAllows(compiled, address)) continue;
        const shown = clientIp === undefined ? 'an unknown address' : `the address ${clientIp}`;
        throw services.errors.create('ip_not_allowed', {
          detail: `Requests from ${shown} are not allowed by this ${owner === 'key' ? "API key's" : "team's"} allowed_ips.`,
        });
      }
    };
    return {
      hooks: {
        auth(context) {
          const keyList = setList(context.principal.settings.allowed_ips);
          const teamList = setList(teamOf(services.snapshot, context)?.permissions.allowed_ips);
          if (keyList === undefined && teamList === undefined) return;
          check(keyList, teamList, context.clientIp);
        },
      },
      // Management calls too: a key bound to a network must not mint or read anything from elsewhere.
      // A member key's team is its own (X-Team-ID does not move an account key into a team here).
      managementGuard(principal, clientAddress) {
        const keyList = setList(principal.settings.allowed_ips);
        const teamId = principal.teamId;
        const team = teamId === undefined ? undefined : services.snapshot.section<TeamsSection>(TEAMS_SECTION)?.byId.get(teamId);
        const teamList = team !== undefined && team.accountId === principal.accountId ? setList(team.permissions.allowed_ips) : undefined;
        if (keyList === undefined && teamList === undefined) return;
        check(keyList, teamList, clientAddress());
      },
    };
  },
});

export default ipAllowlistPolicy;
