// Who may scrape: the operator key, or a bearer equal to KEYWAY_METRICS_TOKEN (a scrape-only secret a
// Prometheus server can hold without holding the operator key). The token is compared in constant
// time: both sides are hashed first, so neither content nor length leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Services } from '../../core/spec/services.ts';

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

export function bearerOf(headers: Headers): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.get('authorization') ?? '');
  return match?.[1];
}

export function createScrapeCheck(services: Services, token: string | undefined): (headers: Headers, clientAddress: () => string | undefined) => void {
  const tokenDigest = token === undefined || token === '' ? undefined : digest(token);
  return (headers, clientAddress) => {
    const bearer = bearerOf(headers);
    if (tokenDigest !== undefined && bearer !== undefined && bearer.length <= 512 && timingSafeEqual(digest(bearer), tokenDigest)) return;
    // Else a gateway key, admitted as every call is: a missing or unknown one is 401 invalid_api_key,
    // one used from outside its allowed_ips 403 ip_not_allowed, and only then a lesser role 403 (QA15
    // F4: the role check alone told a key bound to another network that it was a valid admin key).
    services.auth.admit(headers, clientAddress, 'operator');
  };
}
