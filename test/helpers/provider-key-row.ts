// A provider key row as a store keeps it (`NewProviderKey`), for suites that write one straight into
// the store: what another worker or an earlier release left, or a key sealed for a master-key test.

import { fingerprint, maskKey } from '../../core/credentials/secrets.ts';
import type { KeyOwner } from '../../core/spec/provider.ts';
import type { NewProviderKey } from '../../core/spec/store.ts';

export interface ProviderKeyRowOptions {
  id: string;
  owner: KeyOwner;
  accountId: string | null;
  provider: string;
  /** The key itself: only its masked form and fingerprint go into the row. */
  apiKey: string;
  ciphertext: string;
  keyVersion?: number;
  cryptoBackend?: string;
}

export function providerKeyRow(options: ProviderKeyRowOptions): NewProviderKey {
  return {
    id: options.id,
    owner: options.owner,
    accountId: options.accountId,
    provider: options.provider,
    ciphertext: options.ciphertext,
    keyVersion: options.keyVersion ?? 1,
    cryptoBackend: options.cryptoBackend ?? 'local',
    maskedKey: maskKey(options.apiKey),
    fingerprint: fingerprint(options.apiKey),
    organizationId: null,
    settings: {},
    status: 'active',
    weight: 1,
  };
}
