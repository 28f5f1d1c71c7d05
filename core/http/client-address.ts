// The client address a request came from: the socket's, or, when the socket is one of the operator's
// trusted reverse proxies (`KEYWAY_TRUSTED_PROXIES`), the right-most `X-Forwarded-For` entry that is not
// itself a trusted proxy. Entries left of that one are whatever the client chose to send, so they are
// never believed.

import { canonicalIp, cidrContains, formatIp, parseCidr, parseIp, type Cidr, type IpAddress } from '../wire/ip-address.ts';

/** An `X-Forwarded-For` entry as an address: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:443`. */
export function parseForwardedEntry(entry: string): IpAddress | undefined {
  const text = entry.trim();
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end === -1) return undefined;
    const rest = text.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return parseIp(text.slice(1, end));
  }
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(text);
  return parseIp(v4WithPort?.[1] ?? text);
}

export type ClientAddressResolver = (socketAddress: string | undefined, headers: Headers) => string | undefined;

/** Compiles the trusted proxy list once; the resolver runs only when a plugin reads `clientIp`. */
export function createClientAddressResolver(trustedProxies: readonly string[]): ClientAddressResolver {
  const proxies: Cidr[] = trustedProxies.map((entry) => parseCidr(entry));
  if (proxies.length === 0) return (socketAddress) => socketAddress;
  const trusted = (address: IpAddress): boolean => {
    const canonical = canonicalIp(address);
    return proxies.some((proxy) => cidrContains(proxy, canonical) || cidrContains(proxy, address));
  };
  return (socketAddress, headers) => {
    const socket = socketAddress === undefined ? undefined : parseIp(socketAddress);
    if (socket === undefined || !trusted(socket)) return socketAddress;
    const forwarded = headers.get('x-forwarded-for');
    if (forwarded === null || forwarded.trim() === '') return socketAddress;
    const entries = forwarded.split(',');
    let leftmost: IpAddress | undefined;
    for (let index = entries.length - 1; index >= 0; index -= 1) {
      const address = parseForwardedEntry(entries[index] ?? '');
      // A trusted proxy wrote something that is not an address: no address can be believed.
      if (address === undefined) return undefined;
      if (!trusted(address)) return formatIp(canonicalIp(address));
      leftmost = address;
    }
    // Every hop was a trusted proxy: the first one is as close to the client as the chain says.
    return leftmost === undefined ? socketAddress : formatIp(canonicalIp(leftmost));
  };
}
