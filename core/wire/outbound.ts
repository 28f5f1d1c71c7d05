// Addresses a client chose for Keyway to call (webhook and alert targets), held to the rules a provider
// key's own `base_url` is held to (core/wire/upstream-policy.ts: the one place that says what is private).
// `refusal` needs no lookup, for the moment a target is saved; `admit` resolves the host name before each
// delivery and answers the checked address, which the sender connects to. See docs/alerts.md.

import type { OutboundAdmission, OutboundService } from '../spec/services.ts';
import { parseIp } from './ip-address.ts';
import { normaliseHost } from './upstream-entries.ts';
import type { UpstreamPolicy } from './upstream-policy.ts';

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

/** A failure code worth showing: a system or TLS code (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`), never free text. */
const FAILURE_CODE = /^[A-Za-z][A-Za-z0-9_]{1,63}$/;

/**
 * Why a request to a client's address failed, built from the error's class and code only, never from
 * its message: fetch's message quotes the URL it fetched, and a pinned delivery's URL holds the checked
 * (possibly internal) address as well as the target's path and query (often its own token). Matching
 * the URL's text to cut it out would miss the rewritten one; this cannot carry it.
 */
export function describeNetworkFailure(error: unknown, timeoutMs?: number): string {
  const name = error instanceof Error || error instanceof DOMException ? error.name : undefined;
  if (name === 'TimeoutError' || name === 'AbortError') return timeoutMs === undefined ? 'no answer in time' : `no answer within ${timeoutMs} ms`;
  const raw = error !== null && typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
  const code = typeof raw === 'string' && FAILURE_CODE.test(raw) ? raw : undefined;
  if (code === undefined) return `a network error${name !== undefined && FAILURE_CODE.test(name) ? ` (${name})` : ''}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `its TLS certificate does not cover the host name (${code})`;
  if (/CERT|TLS|SSL|UNABLE_TO_|SIGNED/.test(code)) return `its TLS certificate could not be verified (${code})`;
  if (code === 'ECONNREFUSED' || code === 'ConnectionRefused') return `the connection was refused (${code})`;
  if (code === 'ECONNRESET' || code === 'ConnectionClosed' || code === 'ConnectionReset') return `the connection was closed (${code})`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name could not be resolved (${code})`;
  if (code === 'ETIMEDOUT' || code === 'ConnectionTimeout') return `the connection timed out (${code})`;
  return `a network error (${code})`;
}

/**
 * Last line of defence for a channel's error text (a plugin channel may still quote what it fetched):
 * every URL is cut out whole, and every IPv4 address that is not a rule's range (`10.0.0.0/8` names a
 * rule and stays). Channels should not rely on it: their own errors name no URL and no address.
 */
export function withoutAddresses(text: string): string {
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]*/gi, '[URL removed]')
    .replace(/\[[0-9a-f:.]*:[0-9a-f:.]*\](:\d+)?/gi, '[address removed]')
    .replace(/(?<![\d.])(\d{1,3}\.){3}\d{1,3}(?![\d.]|\/\d)(:\d+)?/g, '[address removed]');
}
