// Which addresses Keyway may call upstream: the operator's decision, never an account admin's. A
// provider key's `settings.base_url` is checked against built-in rules (no loopback, private,
// link-local, metadata or reserved addresses) and the operator's KEYWAY_UPSTREAM_ALLOW /
// KEYWAY_UPSTREAM_DENY lists, after DNS resolution, when the key is stored and again on every call.
// The operator's own base URLs (KEYWAY_<PROVIDER>_BASE_URL, plugin config, provider defaults) are
// trusted, except that nothing may call Keyway's own listening address. Every upstream request also
// carries a `Via: 1.1 keyway-<instance>` marker, and an inbound request that carries one is refused,
// which stops loops the address rules cannot see (a load balancer, another name for this host).
// The operator's entries are parsed and matched in upstream-entries.ts. See docs/security.md,
// "Upstream addresses".

import { AsyncLocalStorage } from 'node:async_hooks';
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { LRUCache } from 'lru-cache';
import { canonicalIp, cidrContains, embeddedIpv4, formatIp, parseCidr, parseIp, type Cidr, type IpAddress } from './ip-address.ts';
import { addressMatches, hostMatches, namesOneAddress, normaliseHost, parseUpstreamList, portMatches, type UpstreamEntry } from './upstream-entries.ts';

// ---------------------------------------------------------------------------------------------
// The built-in rules

const cidr = (text: string): Cidr => parseCidr(text);

interface BuiltinRange {
  cidr: Cidr;
  text: string;
  /** What the range is, for the refusal message. */
  category: string;
}

const range = (text: string, category: string): BuiltinRange => ({ cidr: cidr(text), text, category });

/** Refused for a key's base_url unless the operator allows them. Metadata addresses are checked first, separately. */
export const BUILTIN_DENIED_RANGES: readonly BuiltinRange[] = [
  range('0.0.0.0/8', 'the unspecified address'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local'),
  range('10.0.0.0/8', 'a private range'),
  range('172.16.0.0/12', 'a private range'),
  range('192.168.0.0/16', 'a private range'),
  range('100.64.0.0/10', 'shared address space (carrier-grade NAT)'),
  range('192.0.0.0/24', 'reserved (IETF protocol assignments)'),
  range('198.18.0.0/15', 'reserved (benchmarking)'),
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'),
  range('::/128', 'the unspecified address'),
  range('::1/128', 'loopback'),
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'site-local (a private range)'),
  range('fc00::/7', 'unique local (a private range)'),
  range('64:ff9b:1::/48', 'local-use NAT64 (a private range)'),
  range('ff00::/8', 'multicast'),
];

/** Cloud instance metadata services: credentials live there. Only an exact allow entry opens one. */
export const METADATA_ADDRESSES: readonly IpAddress[] = ['169.254.169.254', 'fd00:ec2::254', '169.254.170.2', '100.100.100.200'].map(
  (text) => parseIp(text) as IpAddress,
);
/**
 * Names under the special-use domains that only ever mean this network: refused by name, before any
 * lookup. `.internal` (reserved for private use) holds the clouds' metadata names
 * (`metadata.<cloud>.internal`, `instance-data.ec2.internal`); `.local` is multicast DNS;
 * `.localhost` is loopback (RFC 6761). Whatever they resolve to is checked as well.
 */
export const BUILTIN_DENIED_DOMAINS: readonly { suffix: string; category: string }[] = [
  { suffix: 'internal', category: 'a private-use domain (.internal, where cloud metadata services live)' },
  { suffix: 'local', category: 'a multicast DNS name (.local)' },
  { suffix: 'localhost', category: 'a loopback name (.localhost)' },
];

const LOOPBACK_V4 = cidr('127.0.0.0/8');
const LOOPBACK_V6 = cidr('::1/128');
const UNSPECIFIED_V4 = cidr('0.0.0.0/8');
const UNSPECIFIED_V6 = cidr('::/128');

function isLocalAddress(address: IpAddress): boolean {
  return (
    cidrContains(LOOPBACK_V4, address) || cidrContains(LOOPBACK_V6, address) || cidrContains(UNSPECIFIED_V4, address) || cidrContains(UNSPECIFIED_V6, address)
  );
}

function sameIp(left: IpAddress, right: IpAddress): boolean {
  return left.version === right.version && left.value === right.value;
}

// ---------------------------------------------------------------------------------------------
// The policy

/**
 * Whose address this is. `key`: a provider key's `settings.base_url` (set through the API, by an
 * account admin or with the operator key): every rule applies. `operator`: the environment, plugin
 * config or a provider's default: trusted, but never Keyway's own listening address.
 */
export type UpstreamTrust = 'key' | 'operator';

export type UpstreamVerdict =
  | { allowed: true }
  | { allowed: false; kind: 'refused'; rule: string; message: string; address?: string }
  | { allowed: false; kind: 'unresolved'; message: string };

/** A verdict and the addresses it judged (see `UpstreamPolicy.checkAddresses`). */
export interface CheckedAddresses {
  verdict: UpstreamVerdict;
  /** Every address that passed, in the resolver's order; empty when refused or when no lookup was needed. */
  addresses: readonly string[];
}

export interface UpstreamPolicyOptions {
  allow?: string | readonly string[];
  deny?: string | readonly string[];
  /** Resolves a host name to its addresses (default: the system resolver, every address). */
  resolve?: (host: string) => Promise<string[]>;
  /** How long a resolution is reused (default 30 s). */
  cacheTtlMs?: number;
  /** How many host names are remembered (default 1000). */
  cacheSize?: number;
  instanceId?: string;
  /** This machine's own addresses (default: every network interface's); used for the loop-to-self rule. */
  localAddresses?: readonly string[];
}

/** The `Via` element Keyway adds to every upstream request: `1.1 keyway-<instance>`. */
export const VIA_PROTOCOL = '1.1';
export const VIA_PSEUDONYM = 'keyway';

/** True when a `Via` header value names a Keyway hop (`… keyway` or `… keyway-<instance>`). One pass, no allocation when absent. */
export function viaNamesKeyway(via: string | null): boolean {
  if (via === null || !via.toLowerCase().includes(VIA_PSEUDONYM)) return false;
  return via.split(',').some((element) => {
    const receivedBy = element.trim().split(/\s+/)[1]?.toLowerCase();
    return receivedBy !== undefined && (receivedBy === VIA_PSEUDONYM || receivedBy.startsWith(`${VIA_PSEUDONYM}-`));
  });
}

async function systemResolve(host: string): Promise<string[]> {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((answer) => answer.address);
}

function interfaceAddresses(): string[] {
  try {
    return Object.values(networkInterfaces())
      .flat()
      .map((entry) => entry?.address)
      .filter((address): address is string => typeof address === 'string');
  } catch {
    return [];
  }
}

function defaultPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

export class UpstreamPolicy {
  readonly allow: readonly UpstreamEntry[];
  readonly deny: readonly UpstreamEntry[];
  readonly instanceId: string;
  /** The value of the `Via` header on every upstream request. */
  readonly via: string;
  private readonly ownPorts = new Set<number>();
  private readonly resolveHost: (host: string) => Promise<string[]>;
  /** Recent answers, so the hot path decides synchronously; bounded, each for a short while. */
  private readonly resolutions: LRUCache<string, string[]>;
  /** Lookups under way: concurrent checks of one name share one. */
  private readonly lookups = new Map<string, Promise<string[]>>();
  /** `trust\0url` → a verdict reached without DNS (operator URLs, IP literals). */
  private readonly verdicts = new Map<string, UpstreamVerdict>();
  private localAddressList: IpAddress[] | undefined;
  private readonly localAddressSource: readonly string[] | undefined;

  constructor(options: UpstreamPolicyOptions = {}) {
    this.allow = parseUpstreamList(options.allow, 'KEYWAY_UPSTREAM_ALLOW');
    this.deny = parseUpstreamList(options.deny, 'KEYWAY_UPSTREAM_DENY');
    this.instanceId = options.instanceId ?? crypto.randomUUID().slice(0, 8);
    this.via = `${VIA_PROTOCOL} ${VIA_PSEUDONYM}-${this.instanceId}`;
    this.resolveHost = options.resolve ?? systemResolve;
    this.resolutions = new LRUCache({ max: options.cacheSize ?? 1000, ttl: options.cacheTtlMs ?? 30_000 });
    this.localAddressSource = options.localAddresses;
  }

  /** Keyway listens on this port: no upstream on this machine may use it. */
  listening(port: number): void {
    this.ownPorts.add(port);
    this.verdicts.clear();
  }

  /** This machine's addresses (computed once). */
  private localAddresses(): IpAddress[] {
    this.localAddressList ??= (this.localAddressSource ?? interfaceAddresses())
      .map((text) => parseIp(text.split('%')[0] ?? text))
      .filter((address): address is IpAddress => address !== undefined)
      .map(canonicalIp);
    return this.localAddressList;
  }

  /** Resolves a host (cached; concurrent lookups share one). IP literals need none. */
  resolve(host: string): Promise<string[]> {
    const cached = this.resolutions.get(host);
    if (cached !== undefined) return Promise.resolve(cached);
    const running = this.lookups.get(host);
    if (running !== undefined) return running;
    // A failed lookup is not remembered.
    const pending = this.resolveHost(host)
      .then((addresses) => {
        if (addresses.length === 0) throw new Error('no addresses');
        this.resolutions.set(host, addresses);
        return addresses;
      })
      .finally(() => this.lookups.delete(host));
    this.lookups.set(host, pending);
    return pending;
  }

  /**
   * Checks a URL. Synchronous when nothing needs resolving (an operator URL not on Keyway's port, an
   * IP literal, a cached host); otherwise resolves the host and checks every address it has.
   */
  check(target: string | URL, trust: UpstreamTrust): UpstreamVerdict | Promise<UpstreamVerdict> {
    // Verdicts that need no DNS depend only on the URL, the lists and Keyway's ports: remembered, so
    // the hot path parses each upstream URL once rather than on every call.
    const remembered = typeof target === 'string' ? this.verdicts.get(`${trust}\u0000${target}`) : undefined;
    if (remembered !== undefined) return remembered;
    const verdict = this.checkUncached(target, trust);
    if (typeof target === 'string' && !(verdict instanceof Promise) && this.decidedWithoutDns(target, trust)) {
      if (this.verdicts.size >= 1000) this.verdicts.clear();
      this.verdicts.set(`${trust}\u0000${target}`, verdict);
    }
    return verdict;
  }

  private decidedWithoutDns(target: string, trust: UpstreamTrust): boolean {
    if (trust === 'operator') return true;
    try {
      return parseIp(normaliseHost(new URL(target).hostname)) !== undefined;
    } catch {
      return true;
    }
  }

  private checkUncached(target: string | URL, trust: UpstreamTrust): UpstreamVerdict | Promise<UpstreamVerdict> {
    const named = this.decideWithoutLookup(target, trust);
    if (!('host' in named)) return named;
    const { host, port } = named;
    const cached = this.resolutions.get(host);
    if (cached !== undefined) return this.evaluate(host, port, cached, trust);
    return this.resolve(host).then(
      (addresses) => this.evaluate(host, port, addresses, trust),
      (error: unknown) => unresolvedVerdict(error, trust),
    );
  }

  /**
   * Checks a URL as `check` does, and answers the addresses that were judged: the IP literal itself, or
   * every answer for the host name (none when no lookup was needed, or when it was refused). A caller
   * that connects to one of them, rather than letting its client resolve the name again, leaves no
   * DNS-rebinding window between the check and the connection (plugins/webhooks pins its deliveries).
   */
  async checkAddresses(target: string | URL, trust: UpstreamTrust): Promise<CheckedAddresses> {
    const named = this.decideWithoutLookup(target, trust);
    if (!('host' in named)) return { verdict: named, addresses: named.allowed ? literalOf(target) : [] };
    const { host, port } = named;
    let addresses: string[];
    try {
      addresses = await this.resolve(host);
    } catch (error) {
      return { verdict: unresolvedVerdict(error, trust), addresses: [] };
    }
    const verdict = this.evaluate(host, port, addresses, trust);
    return { verdict, addresses: verdict.allowed ? addresses : [] };
  }

  /** The verdict when no lookup is needed (a bad URL, an operator URL, an IP literal, a name refused by name); otherwise the name to resolve. */
  private decideWithoutLookup(target: string | URL, trust: UpstreamTrust): UpstreamVerdict | { host: string; port: number } {
    let url: URL;
    try {
      url = typeof target === 'string' ? new URL(target) : target;
    } catch {
      return { allowed: false, kind: 'refused', rule: 'invalid URL', message: 'is not a valid URL' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return { allowed: false, kind: 'refused', rule: 'scheme', message: `uses ${url.protocol}; only http: and https: upstreams are allowed` };
    }
    const host = normaliseHost(url.hostname);
    const port = defaultPort(url);
    // The operator's URLs only need the loop-to-self rule, which only a URL on Keyway's own port can break.
    if (trust === 'operator' && !this.ownPorts.has(port)) return { allowed: true };
    const literal = parseIp(host);
    if (literal !== undefined) return this.evaluate(host, port, [host], trust);
    const early = trust === 'key' ? this.evaluateHostName(host, port) : undefined;
    return early ?? { host, port };
  }

  /** The rules that need only the name: deny entries and the special-use domains. */
  private evaluateHostName(host: string, port: number): UpstreamVerdict | undefined {
    const denied = this.deny.find((entry) => hostMatches(entry, host) && portMatches(entry, port));
    if (denied !== undefined)
      return refused(`KEYWAY_UPSTREAM_DENY entry '${denied.text}'`, `is denied by the operator (KEYWAY_UPSTREAM_DENY entry '${denied.text}')`);
    const domain = BUILTIN_DENIED_DOMAINS.find((entry) => host.endsWith(`.${entry.suffix}`));
    if (domain !== undefined && !this.allow.some((entry) => hostMatches(entry, host) && portMatches(entry, port))) {
      return refused(domain.category, `is in ${domain.category}; only the operator can allow it (KEYWAY_UPSTREAM_ALLOW)`);
    }
    return undefined;
  }

  /** Checks a host and the addresses it resolved to (pure: no I/O). */
  evaluate(host: string, port: number, addressTexts: readonly string[], trust: UpstreamTrust): UpstreamVerdict {
    const named = parseIp(host) === undefined;
    if (trust === 'key' && named) {
      const early = this.evaluateHostName(host, port);
      if (early !== undefined) return early;
    }
    const hostAllow = named ? this.allow.find((entry) => hostMatches(entry, host) && portMatches(entry, port)) : undefined;
    for (const text of addressTexts) {
      const parsed = parseIp(text);
      if (parsed === undefined) return refused('unparseable address', 'resolved to something that is not an IP address');
      const address = canonicalIp(parsed);
      const shown = named ? 'resolves to an address that' : formatIp(address);
      // Loop to self: every trust level.
      if (this.ownPorts.has(port) && (isLocalAddress(address) || this.localAddresses().some((local) => sameIp(local, address)))) {
        return refused('loop to self', `${named ? 'resolves to' : 'is'} Keyway's own listening address (port ${port})`, text);
      }
      if (trust === 'operator') continue;
      const candidates = [address, ...embeddedIpv4(address)];
      const denied = this.deny.find((entry) => portMatches(entry, port) && candidates.some((candidate) => addressMatches(entry, candidate)));
      if (denied !== undefined) {
        return refused(
          `KEYWAY_UPSTREAM_DENY entry '${denied.text}'`,
          `${named ? 'resolves to an address ' : 'is '}denied by the operator (KEYWAY_UPSTREAM_DENY entry '${denied.text}')`,
          text,
        );
      }
      const addressAllow = this.allow.find((entry) => portMatches(entry, port) && addressMatches(entry, address));
      const metadata = candidates.some((candidate) => METADATA_ADDRESSES.some((known) => sameIp(known, candidate)));
      if (metadata && (addressAllow === undefined || !namesOneAddress(addressAllow))) {
        return refused('cloud metadata', `${named ? 'resolves to' : 'is'} a cloud metadata address`, text);
      }
      const allowEntry = hostAllow ?? addressAllow;
      if (allowEntry !== undefined) continue;
      for (const candidate of candidates) {
        const builtin = BUILTIN_DENIED_RANGES.find((entry) => cidrContains(entry.cidr, candidate));
        if (builtin !== undefined) {
          const what = named ? `${shown} is ${builtin.category} (${builtin.text})` : `is ${builtin.category} (${builtin.text})`;
          return refused(`${builtin.category} (${builtin.text})`, `${what}; only the operator can allow it (KEYWAY_UPSTREAM_ALLOW)`, text);
        }
      }
    }
    return { allowed: true };
  }
}

/** A lookup that failed: refused for a key's address (nothing was checked); an operator's is left to its fetch. */
function unresolvedVerdict(error: unknown, trust: UpstreamTrust): UpstreamVerdict {
  if (trust === 'operator') return { allowed: true };
  const code = error !== null && typeof error === 'object' && 'code' in error ? ` (${String((error as { code: unknown }).code)})` : '';
  return { allowed: false, kind: 'unresolved', message: `could not be resolved${code}` };
}

/** The URL's host when it is an IP literal, as the one address judged. */
function literalOf(target: string | URL): string[] {
  try {
    const host = normaliseHost((typeof target === 'string' ? new URL(target) : target).hostname);
    return parseIp(host) === undefined ? [] : [host];
  } catch {
    return [];
  }
}

function refused(rule: string, message: string, address?: string): UpstreamVerdict {
  return address === undefined ? { allowed: false, kind: 'refused', rule, message } : { allowed: false, kind: 'refused', rule, message, address };
}

// ---------------------------------------------------------------------------------------------
// The scope: which policy, and whose address, for the upstream calls made inside it. The core sets it
// around every adapter call (attempts, model listings); provider-kit reads it. Providers never see it.

export interface UpstreamScope {
  policy: UpstreamPolicy;
  trust: UpstreamTrust;
}

const scopes = new AsyncLocalStorage<UpstreamScope>();

const scopesByPolicy = new WeakMap<UpstreamPolicy, Record<UpstreamTrust, UpstreamScope>>();

/** The scope of a policy and trust level: one object each, so attaching it to a call allocates nothing. */
export function scopeFor(policy: UpstreamPolicy, trust: UpstreamTrust): UpstreamScope {
  let scopes = scopesByPolicy.get(policy);
  if (scopes === undefined) {
    scopes = { key: { policy, trust: 'key' }, operator: { policy, trust: 'operator' } };
    scopesByPolicy.set(policy, scopes);
  }
  return scopes[trust];
}

export function withUpstreamScope<Value>(scope: UpstreamScope | undefined, run: () => Value): Value {
  return scope === undefined ? run() : scopes.run(scope, run);
}

export function currentUpstreamScope(): UpstreamScope | undefined {
  return scopes.getStore();
}

/** A key with its own `settings.base_url` is held to every rule; without one it uses the operator's address. */
export function trustForKey(settings: { base_url?: unknown }): UpstreamTrust {
  return typeof settings.base_url === 'string' && settings.base_url !== '' ? 'key' : 'operator';
}
