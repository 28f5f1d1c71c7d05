// Addresses a client chose for Keyway to call (webhook and alert targets), held to the rules a provider
// key's own `base_url` is held to (core/wire/upstream-policy.ts: the one place that says what is private).
// `refusal` needs no lookup, for the moment a target is saved; `admit` resolves the host name before each
// delivery and answers the checked address, which the sender connects to. See docs/alerts.md.

import type { OutboundAdmission, OutboundService } from '../spec/services.ts';
import { parseIp } from './ip-address.ts';
import { normaliseHost, type UpstreamPolicy } from './upstream-policy.ts';

/**
 * Why Keyway may not call a client's webhook address, decided without a lookup: an IP literal (the
 * metadata service's 169.254.169.254, a private network, this machine) is held to the rules a provider
 * key's own `base_url` is; `localhost` names this machine. A host name passes here: `admitOutbound`
 * resolves it before each delivery.
 */
export function outboundRefusal(policy: UpstreamPolicy, target: string): string | undefined {
  let host: string;
  try {
    host = normaliseHost(new URL(target).hostname);
  } catch {
    return 'is not a valid URL';
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return 'names this machine (localhost)';
  if (parseIp(host) === undefined) return undefined;
  const verdict = policy.check(target, 'key');
  if (verdict instanceof Promise || verdict.allowed) return undefined;
  return verdict.message;
}

/**
 * Before each delivery: the lookup-free refusal, then every address the host name resolves to, judged
 * as a key's `base_url` is (one private answer among public ones refuses the name). KEYWAY_UPSTREAM_ALLOW
 * opens a private address or name here exactly as it does for a key.
 */
export async function admitOutbound(policy: UpstreamPolicy, target: string): Promise<OutboundAdmission> {
  const refused = outboundRefusal(policy, target);
  if (refused !== undefined) return { allowed: false, kind: 'refused', reason: refused };
  const { verdict, addresses } = await policy.checkAddresses(target, 'key');
  if (!verdict.allowed) return { allowed: false, kind: verdict.kind, reason: verdict.message };
  const literal = parseIp(normaliseHost(new URL(target).hostname)) !== undefined;
  return { allowed: true, address: literal ? undefined : preferredAddress(addresses) };
}

/**
 * The answer to connect to: the first IPv4 one when there is any (reachable from more networks than
 * IPv6), else the first. Every answer passed the rules, so any choice is safe.
 */
function preferredAddress(addresses: readonly string[]): string | undefined {
  return addresses.find((address) => parseIp(address)?.version === 4) ?? addresses[0];
}

/** `services.outbound` for one policy. */
export function createOutboundService(policy: UpstreamPolicy): OutboundService {
  return {
    refusal: (target) => outboundRefusal(policy, target),
    admit: (target) => admitOutbound(policy, target),
  };
}
