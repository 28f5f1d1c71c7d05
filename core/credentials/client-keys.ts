// The client's own provider key, sent in `X-Provider-Key` for one request (docs/key-lifecycle.md,
// "Never-store mode"). It lives only in this request's memory: a routing record carries an id, never
// the key, and the key sits beside it in a WeakMap that dies with the request. It is redacted from
// every error text and log line while the request runs, and never stored, logged or booked (the
// usage row says byok with no provider key id).

import { CLIENT_PROVIDER_KEY_ID } from '../spec/key-source.ts';
import type { ProviderKeyRecord, ResolvedKeys } from '../spec/plugin.ts';
import { forgetSecret, rememberSecret } from './secret-values.ts';

const keys = new WeakMap<ProviderKeyRecord, string>();
const EMPTY: ReadonlyMap<string, readonly ProviderKeyRecord[]> = new Map();

/** A routing record for the client's key, the only key the request may use. */
export function clientKeys(provider: string, accountId: string, apiKey: string): ResolvedKeys {
  const record: ProviderKeyRecord = {
    id: CLIENT_PROVIDER_KEY_ID,
    provider,
    owner: 'account',
    accountId,
    organizationId: undefined,
    settings: {},
    status: 'active',
    weight: 1,
  };
  keys.set(record, apiKey);
  rememberSecret(apiKey);
  return { account: new Map([[provider, [record]]]), platform: EMPTY };
}

export function clientKeyOf(record: ProviderKeyRecord): string | undefined {
  return record.id === CLIENT_PROVIDER_KEY_ID ? keys.get(record) : undefined;
}

export function isClientKey(record: ProviderKeyRecord): boolean {
  return record.id === CLIENT_PROVIDER_KEY_ID;
}

/** Once the request is booked, its key stops being redacted by value (pattern redaction still applies). */
export function releaseClientKeys(resolved: ResolvedKeys | undefined): void {
  if (resolved === undefined) return;
  for (const records of resolved.account.values()) {
    for (const record of records) {
      const apiKey = clientKeyOf(record);
      if (apiKey === undefined) continue;
      keys.delete(record);
      forgetSecret(apiKey);
    }
  }
}
