// The provider keys as a ciphertext holder (core/spec/crypto-backend.ts), for master-key rotation:
// every row, deleted ones too (a deleted key's ciphertext left under a retired master key would still
// open for whoever holds that key and the database).

import type { CiphertextHolder } from '../spec/crypto-backend.ts';
import { KEY_REFERENCE_BACKEND, WIPED_BACKEND } from '../spec/key-source.ts';
import type { Store } from '../spec/store.ts';
import { providerKeyBinding, type ConfigSnapshots } from './snapshot.ts';

export const PROVIDER_KEYS_HOLDER = 'provider_keys';
/** The status of a key sealed under a master key version the operator lost: routing skips it until it is entered again. */
export const NEEDS_REENTRY = 'needs_reentry';

/** Undefined when the store cannot list and re-seal provider keys (both optional in the store contract). */
export function providerKeyHolder(store: Store, snapshots: ConfigSnapshots): CiphertextHolder | undefined {
  const list = store.listSealedProviderKeys?.bind(store);
  const reseal = store.resealProviderKeys?.bind(store);
  if (list === undefined || reseal === undefined) return undefined;
  return {
    name: PROVIDER_KEYS_HOLDER,
    tables: ['provider_keys'],
    async list(afterId, limit) {
      // References (never-store mode) and wiped deleted keys hold no ciphertext: nothing to re-wrap.
      // The cursor still moves past them, so a page of them does not end the walk early.
      const rows = await list(afterId, limit);
      return rows.map((row) => ({
        id: row.id,
        cursor: row.cursor,
        ciphertext: row.ciphertext,
        binding: providerKeyBinding(row.id, row.owner, row.accountId, row.provider),
        backend: row.cryptoBackend,
        keyVersion: row.keyVersion,
        needsReentry: row.status === NEEDS_REENTRY,
        retired: row.deletedAt !== null,
        noCiphertext: row.cryptoBackend === KEY_REFERENCE_BACKEND || row.cryptoBackend === WIPED_BACKEND,
      }));
    },
    async replace(updates) {
      const stored = await reseal(
        updates.map((update) => ({
          id: update.id,
          expectedCiphertext: update.expectedCiphertext,
          ciphertext: update.ciphertext,
          keyVersion: update.keyVersion,
          cryptoBackend: update.backend,
        })),
      );
      const done = new Set(stored);
      for (const update of updates) if (done.has(update.id)) snapshots.resealed(update.id, update.ciphertext, update.backend);
      return stored;
    },
  };
}
