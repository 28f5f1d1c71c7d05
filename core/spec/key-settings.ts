// The governance settings a gateway key carries (`GatewayKeyRecord.settings`), as the bodies that set
// them take them: account keys (`POST /v1/keys`) and member keys (the teams plugin) share these
// schemas and this one way of storing them, so the policies that read a key's settings
// (ip-allowlist, environment, rate-limits) treat both kinds of key alike.

import { Type } from '@sinclair/typebox';

export const KeyEnvironmentSchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
  description: 'the environment the key belongs to (production, staging…): lowercase letters, digits, - and _',
});

export const AllowedIpsSchema = Type.Array(Type.String({ minLength: 1, maxLength: 64, description: 'an address or a CIDR range' }), { maxItems: 256 });

/** The body fields a key's settings are made of. */
export const KEY_SETTING_FIELDS = ['environment', 'allowed_ips', 'requests_per_minute', 'tokens_per_minute'] as const;

/** The settings to store for a key from a validated body: the fields it gives, nothing else. */
export function keySettingsOf(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const name of KEY_SETTING_FIELDS) if (body[name] !== undefined) settings[name] = body[name];
  return settings;
}
