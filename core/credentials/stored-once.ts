// A provider key is stored once per owner (an account, or the platform) and provider: the store keeps
// the live keys' fingerprints unique there (migration 0013_provider_keys_stored_once). A route checks
// its snapshot first, which answers most repeats without a write; a key another worker or instance
// stored since that snapshot was loaded reaches the store, which refuses the second copy (QA17: with
// the snapshot check alone, two workers each stored it). Here that refusal becomes the documented 409
// naming the stored key, whatever the store's driver calls its constraint error.

import type { NewProviderKey, Store } from '../spec/store.ts';

/** What makes two provider keys the same stored key. */
export type StoredKeyIdentity = Pick<NewProviderKey, 'owner' | 'accountId' | 'provider' | 'fingerprint'>;

/**
 * Runs `write`, which stores `keys` (an insert, or a key given a new fingerprint). When it fails, the
 * store is asked which of them is live already under another id: the first such is answered by
 * `conflict(index, storedId)`; when none is (or the store cannot be read), the write's own error stands.
 * `ownId`: the key the write changes, which is not its own twin.
 */
export async function refusingSecondCopy<T>(
  store: Store,
  keys: readonly StoredKeyIdentity[],
  write: () => Promise<T>,
  conflict: (index: number, storedId: string) => Error,
  ownId?: string,
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const twins = await store.listActiveProviderKeys().catch(() => undefined);
    if (twins === undefined) throw error;
    for (const [index, key] of keys.entries()) {
      const twin = twins.find(
        (stored) =>
          stored.id !== ownId &&
          stored.owner === key.owner &&
          stored.accountId === key.accountId &&
          stored.provider === key.provider &&
          stored.fingerprint === key.fingerprint,
      );
      if (twin !== undefined) throw conflict(index, twin.id);
    }
    throw error;
  }
}
