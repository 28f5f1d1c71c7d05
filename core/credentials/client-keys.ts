// The client's own provider key, sent in `X-Provider-Key` for one request (docs/key-lifecycle.md,
// "Never-store mode"). It lives only in this request's memory: a routing record carries an id, never
// the key, and the key sits beside it in a WeakMap that dies with the request. It is redacted from
// every error text and log line while the request runs (with the masked forms a provider may quote),
// and never stored, logged or booked (the usage row says byok with no provider key id).

import { CLIENT_PROVIDER_KEY_ID } from '../spec/key-source.ts';
import type { ProviderKeyRecord, ResolvedKeys } from '../spec/plugin.ts';
import { forgetMaskedForms, rememberMaskedForms } from './masked-keys.ts';
import { forgetSecret, rememberSecret } from './secret-values.ts';

const keys = new WeakMap<ProviderKeyRecord, string>();
/** Request (its context object) → the client key it brought, so booking it releases the key in O(1). */
const byRequest = new WeakMap<object, string>();
const EMPTY: ReadonlyMap<string, readonly ProviderKeyRecord[]> = new Map();

/** A routing record for the client's key, the only key the request may use. */
export function clientKeys(request: object, provider: string, accountId: string, apiKey: string): ResolvedKeys {
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
  if (!byRequest.has(request)) {
    rememberSecret(apiKey);
    // A provider refusing the key may quote it masked (`sk-*****wxyz`): that form is the client's key too.
    rememberMaskedForms(apiKey);
    byRequest.set(request, apiKey);
  }
  return { account: new Map([[provider, [record]]]), platform: EMPTY };
}

export function clientKeyOf(record: ProviderKeyRecord): string | undefined {
  return record.id === CLIENT_PROVIDER_KEY_ID ? keys.get(record) : undefined;
}

export function isClientKey(record: ProviderKeyRecord): boolean {
  return record.id === CLIENT_PROVIDER_KEY_ID;
}

/** Once the request is booked, its key stops being redacted by value (pattern redaction still applies). */
export function releaseClientKey(request: object): void {
  const apiKey = byRequest.get(request);
  if (apiKey === undefined) return;
  byRequest.delete(request);
  forgetSecret(apiKey);
  forgetMaskedForms(apiKey);
}
