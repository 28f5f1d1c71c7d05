// IP addresses and CIDR ranges as integers: parsed, printed, compared, and the IPv4 address an IPv6
// one may carry. Shared by the upstream address rules (upstream-policy.ts), the client address behind
// trusted proxies (core/http/client-address.ts) and the IP allowlist policy.

import { isIP } from 'node:net';

export interface IpAddress {
  version: 4 | 6;
  /** The address as a 32- or 128-bit number. */
  value: bigint;
}

export interface Cidr {
  version: 4 | 6;
  network: bigint;
  prefix: number;
}

export const bitsOf = (version: 4 | 6): number => (version === 4 ? 32 : 128);

function parseIpv4Value(text: string): bigint {
  let value = 0n;
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function parseIpv6Value(text: string): bigint {
  let source = text;
  // A trailing dotted quad (`::ffff:1.2.3.4`) becomes two hex groups.
  const lastColon = source.lastIndexOf(':');
  const tail = source.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4Value(tail);
    source = `${source.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = source.split('::');
  const left = halves[0] === '' || halves[0] === undefined ? [] : halves[0].split(':');
  const right = halves.length < 2 || halves[1] === '' || halves[1] === undefined ? [] : halves[1].split(':');
  const groups = halves.length < 2 ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  return value;
}

/** A literal IPv4 or IPv6 address (brackets allowed, no zone id), or undefined. Only canonical dotted quads count as IPv4. */
export function parseIp(text: string): IpAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const version = isIP(bare);
  if (version === 4) return { version: 4, value: parseIpv4Value(bare) };
  if (version === 6) return { version: 6, value: parseIpv6Value(bare) };
  return undefined;
}

export function formatIp(address: IpAddress): string {
  if (address.version === 4) {
    const value = address.value;
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((address.value >> shift) & 0xffffn).toString(16));
  // Collapse the longest run of zero groups (RFC 5952), for readable messages.
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === '0') length++;
    if (length > bestLength && length > 1) {
      bestStart = start;
      bestLength = length;
    }
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

/** `10.0.0.0/8`, `fe80::/10`, or a single address (a /32 or /128). Throws an Error saying what is wrong. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseIp(addressText);
  if (address === undefined) throw new Error(`'${addressText}' is not an IPv4 or IPv6 address`);
  const bits = bitsOf(address.version);
  if (slash === -1) return { version: address.version, network: address.value, prefix: bits };
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > bits) throw new Error(`the prefix length '/${prefixText}' must be a number from 0 to ${bits}`);
  const hostBits = BigInt(bits - prefix);
  const network = (address.value >> hostBits) << hostBits;
  if (network !== address.value) {
    const suggestion = `${formatIp({ version: address.version, value: network })}/${prefix}`;
    throw new Error(`'${text}' has host bits set after the /${prefix} prefix; did you mean ${suggestion}?`);
  }
  return { version: address.version, network, prefix };
}

export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.version !== address.version) return false;
  const hostBits = BigInt(bitsOf(cidr.version) - cidr.prefix);
  return address.value >> hostBits === cidr.network >> hostBits;
}

/** Whether every address of `inner` is in `outer` (bits past either prefix ignored). */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.version === outer.version && inner.prefix >= outer.prefix && cidrContains(outer, { version: inner.version, value: inner.network });
}

const cidr = (text: string): Cidr => parseCidr(text);

const MAPPED_V4 = cidr('::ffff:0:0/96');
const COMPATIBLE_V4 = cidr('::/96');
const NAT64 = cidr('64:ff9b::/96');
const SIX_TO_FOUR = cidr('2002::/16');

/** An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address: that is what the socket reaches. */
export function canonicalIp(address: IpAddress): IpAddress {
  if (address.version === 6 && cidrContains(MAPPED_V4, address)) return { version: 4, value: address.value & 0xffffffffn };
  return address;
}

/** IPv4 addresses an IPv6 address carries (NAT64, 6to4, IPv4-compatible), which a gateway may turn into the real thing. */
export function embeddedIpv4(address: IpAddress): IpAddress[] {
  if (address.version !== 6) return [];
  if (cidrContains(NAT64, address) || (cidrContains(COMPATIBLE_V4, address) && address.value > 1n)) return [{ version: 4, value: address.value & 0xffffffffn }];
  if (cidrContains(SIX_TO_FOUR, address)) return [{ version: 4, value: (address.value >> 80n) & 0xffffffffn }];
  return [];
}

/**
 * An allow-list entry (`allowed_ips`): an address, or one with a prefix length; bits past the prefix
 * are ignored. An IPv4-mapped address (`::ffff:10.0.0.1`) is its IPv4 address, and with a prefix of
 * /96 or more its IPv4 range (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). Undefined for anything else, and
 * for two forms that read as addresses but would match nothing (QA12): a zone id (`fe80::1%eth0`,
 * which names an interface of the writer's machine, not an address), and an IPv4-mapped address with
 * a prefix below /96, whose range is IPv6 space no IPv4 client is in (`::ffff:10.0.0.1/24` is `::/24`;
 * the writer meant `10.0.0.0/24` or `::ffff:10.0.0.0/120`, and guessing which could open too much).
 */
export function parseAllowedRange(text: string): Cidr | undefined {
  if (text.includes('%')) return undefined;
  const slash = text.indexOf('/');
  const address = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (address === undefined) return undefined;
  const canonical = canonicalIp(address);
  if (slash === -1) return { version: canonical.version, network: canonical.value, prefix: bitsOf(canonical.version) };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bitsOf(address.version)) return undefined;
  const prefix = Number(prefixText);
  if (address.version === 4 || canonical.version === 6) return { version: address.version, network: address.value, prefix };
  return prefix < 96 ? undefined : { version: 4, network: canonical.value, prefix: prefix - 96 };
}
