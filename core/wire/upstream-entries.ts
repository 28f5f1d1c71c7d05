// The operator's KEYWAY_UPSTREAM_ALLOW / KEYWAY_UPSTREAM_DENY entries: hosts, `*.suffix` globs, IP
// literals and CIDRs, each with an optional port. Parsed once at start (config.ts refuses a bad one
// with what is wrong with it), then matched by the policy (upstream-policy.ts) on every check.

import { isIP } from 'node:net';
import { bitsOf, cidrContains, parseCidr, type Cidr, type IpAddress } from './ip-address.ts';

export type UpstreamMatch = { kind: 'cidr'; cidr: Cidr } | { kind: 'host'; host: string } | { kind: 'suffix'; suffix: string };

export interface UpstreamEntry {
  /** As the operator wrote it, for messages. */
  text: string;
  match: UpstreamMatch;
  /** Only this port, when given. */
  port: number | undefined;
}

/** Lower case, no brackets, no trailing dot: the form every comparison uses. */
export function normaliseHost(hostname: string): string {
  let host = hostname.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  while (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

const HOST_LABELS = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) throw new Error(`'${entry}' has port '${text}', which is not a number from 1 to 65535`);
  return port;
}

/** Splits `host:port`, `[v6]:port`, `[v6/len]:port`, `[v6]/len:port`, `v4/len:port`; a bare IPv6 (two colons or more) has no port. */
function splitPort(entry: string): { host: string; port: number | undefined } {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close === -1) throw new Error(`'${entry}' opens '[' without closing it`);
    const inside = entry.slice(1, close);
    let rest = entry.slice(close + 1);
    let prefix = '';
    const slashMatch = /^\/(\d*)/.exec(rest);
    if (slashMatch !== null) {
      prefix = slashMatch[0];
      rest = rest.slice(prefix.length);
    }
    if (rest === '') return { host: `${inside}${prefix}`, port: undefined };
    if (!rest.startsWith(':')) throw new Error(`'${entry}' has '${rest}' after the address; write [address]:port`);
    return { host: `${inside}${prefix}`, port: parsePort(rest.slice(1), entry) };
  }
  const colons = entry.split(':').length - 1;
  if (colons === 1) {
    const at = entry.indexOf(':');
    return { host: entry.slice(0, at), port: parsePort(entry.slice(at + 1), entry) };
  }
  return { host: entry, port: undefined };
}

/** One KEYWAY_UPSTREAM_ALLOW / KEYWAY_UPSTREAM_DENY entry. Throws an Error saying what is wrong with it. */
export function parseUpstreamEntry(raw: string): UpstreamEntry {
  const text = raw.trim();
  if (text === '') throw new Error('an entry is empty');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new Error(`'${text}' is a URL; write only the host (and port), e.g. '${new URL(text).host}'`);
  const { host, port } = splitPort(text);
  if (host === '') throw new Error(`'${text}' names no host`);
  if (host.includes('/')) return { text, match: { kind: 'cidr', cidr: parseCidr(host) }, port };
  if (isIP(host) !== 0) return { text, match: { kind: 'cidr', cidr: parseCidr(host) }, port };
  if (host.startsWith('*.')) {
    const suffix = normaliseHost(host.slice(2));
    if (!HOST_LABELS.test(suffix)) throw new Error(`'${text}' is not a valid host glob: write *.example.com`);
    return { text, match: { kind: 'suffix', suffix }, port };
  }
  if (host.includes('*')) throw new Error(`'${text}': only a leading '*.' glob is supported (e.g. *.internal.example.com)`);
  // The URL parser is what fetch uses: `0xA9FEA9FE` or `2852039166` become the address they mean.
  let normalised: string;
  try {
    normalised = normaliseHost(new URL(`http://${host}/`).hostname);
  } catch {
    throw new Error(`'${text}' is not a host name, an IP address or a CIDR range`);
  }
  if (isIP(normalised) !== 0) return { text, match: { kind: 'cidr', cidr: parseCidr(normalised) }, port };
  if (!HOST_LABELS.test(normalised)) throw new Error(`'${text}' is not a host name, an IP address or a CIDR range`);
  return { text, match: { kind: 'host', host: normalised }, port };
}

/** A comma-separated list (or an array) of entries; `source` names the setting in error messages. */
export function parseUpstreamList(value: string | readonly string[] | undefined, source: string): UpstreamEntry[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? value.split(',') : value.flatMap((item) => String(item).split(','));
  const entries: UpstreamEntry[] = [];
  for (const item of items) {
    if (item.trim() === '') continue;
    try {
      entries.push(parseUpstreamEntry(item));
    } catch (error) {
      throw new Error(`${source}: ${(error as Error).message}.`);
    }
  }
  return entries;
}

export function hostMatches(entry: UpstreamEntry, host: string): boolean {
  if (entry.match.kind === 'host') return entry.match.host === host;
  if (entry.match.kind === 'suffix') return host.endsWith(`.${entry.match.suffix}`);
  return false;
}

export function addressMatches(entry: UpstreamEntry, address: IpAddress): boolean {
  return entry.match.kind === 'cidr' && cidrContains(entry.match.cidr, address);
}

export const portMatches = (entry: UpstreamEntry, port: number): boolean => entry.port === undefined || entry.port === port;

/** An entry that names exactly one address: the only kind that opens a metadata address. */
export function namesOneAddress(entry: UpstreamEntry): boolean {
  return entry.match.kind === 'cidr' && entry.match.cidr.prefix === bitsOf(entry.match.cidr.version);
}
