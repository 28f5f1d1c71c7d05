// The governance settings a gateway key carries (`GatewayKeyRecord.settings`), as the bodies that set
// them take them: account keys (`POST /v1/keys`) and member keys (the teams plugin) share these
// schemas and this one way of storing them, so the policies that read a key's settings
// (ip-allowlist, environment, rate-limits) treat both kinds of key alike.

import { FormatRegistry, Type } from '@sinclair/typebox';
import { parseAllowedRange } from '../wire/ip-address.ts';

export const KeyEnvironmentSchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
  description: 'the environment the key belongs to (production, staging…): lowercase letters, digits, - and _',
});

/**
 * An `allowed_ips` entry: an IPv4 or IPv6 address, or one with a prefix length (`10.0.0.0/8`,
 * `2001:db8::/32`). Bits past the prefix are allowed (and ignored by the policy). Refused when written:
 * a typo in an allow-list would otherwise match nothing and lock the key's users out without a word.
 * The grammar is the policy's own (parseAllowedRange), so what is taken here is what matches there.
 */
export function isAddressOrRange(text: string): boolean {
  return parseAllowedRange(text) !== undefined;
}

const ADDRESS_OR_RANGE = 'keyway-address-or-range';
if (!FormatRegistry.Has(ADDRESS_OR_RANGE)) FormatRegistry.Set(ADDRESS_OR_RANGE, isAddressOrRange);

export const AllowedIpsSchema = Type.Array(
  Type.String({
    minLength: 1,
    maxLength: 64,
    format: ADDRESS_OR_RANGE,
    description: 'an address or a CIDR range',
    errorMessage: {
      format:
        'must be an IPv4 or IPv6 address or a CIDR range (203.0.113.7, 10.0.0.0/8, 2001:db8::/32), without a zone id (%eth0); an IPv4-mapped address takes an IPv4 range in IPv4 form (10.0.0.0/24, not ::ffff:10.0.0.0/24)',
    },
  }),
  { maxItems: 256 },
);

/** The body fields a key's settings are made of. */
export const KEY_SETTING_FIELDS = ['environment', 'allowed_ips', 'requests_per_minute', 'tokens_per_minute'] as const;

/** The settings to store for a key from a validated body: the fields it gives, nothing else. */
export function keySettingsOf(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const name of KEY_SETTING_FIELDS) if (body[name] !== undefined) settings[name] = body[name];
  return settings;
}
