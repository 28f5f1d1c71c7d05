import { forgetSecret, rememberSecret } from './secret-values.ts';
import { LRUCache } from 'lru-cache';
import type { ConfigSnapshots } from './snapshot.ts';
import { KeywayError } from '../errors.ts';
import type { CryptoBackend, ProviderCredential, ProviderKeyRecord } from '../spec/plugin.ts';

export interface KeyVaultOptions {
  /** How long a decrypted key stays in memory after it was decrypted. */
  ttlMs: number;
  maxEntries: number;
}

/**
 * Decrypts provider keys on first use and keeps them in a bounded, expiring cache, so a request
 * pays for decryption at most once per key per TTL. Entries die with the snapshot that made them:
 * a deleted or rotated key never serves another request.
 */
export class KeyVault {
  private readonly cache: LRUCache<string, ProviderCredential>;
  private readonly pending = new Map<string, Promise<ProviderCredential>>();
  /** Key id → the decrypted value being redacted from every error text and log line. */
  private readonly remembered = new Map<string, string>();
  /** Key id → the ciphertext that last failed to decrypt: /ready is not ready while any remains. */
  private readonly failures = new Map<string, string>();

  constructor(
    private readonly store: ConfigSnapshots,
    private readonly backends: ReadonlyMap<string, CryptoBackend>,
    options: KeyVaultOptions = { ttlMs: 10 * 60_000, maxEntries: 10_000 },
  ) {
    // Expiry is measured from decryption, read against a clock that ticks once a second: a TTL check
    // per request would otherwise cost a timer read on the hot path.
    this.cache = new LRUCache({ max: options.maxEntries, ttl: options.ttlMs, ttlResolution: 1000 });
    store.onChange((snapshot) => {
      // A failure is settled once its key is removed or re-sealed; the next use tells again.
      for (const [id, ciphertext] of this.failures) if (snapshot.secrets.get(id)?.ciphertext !== ciphertext) this.failures.delete(id);
      // A key gone from the configuration stops being redacted by value only then: requests still
      // running with it a moment ago may yet see it echoed.
      for (const [id, apiKey] of this.remembered) {
        if (snapshot.keysById.has(id)) continue;
        forgetSecret(apiKey);
        this.remembered.delete(id);
      }
      for (const id of [...this.cache.keys()]) {
        const listing = snapshot.keysById.get(id);
        const cached = this.cache.peek(id);
        // A changed record (settings, status) gets a fresh credential object on next use.
        if (listing === undefined || cached === undefined || listing.status !== cached.status || listing.settings !== cached.settings) this.cache.delete(id);
      }
    });
  }

  /** Synchronous when cached: the hot path awaits nothing in the common case. */
  credential(record: ProviderKeyRecord): ProviderCredential | Promise<ProviderCredential> {
    const cached = this.cache.get(record.id);
    if (cached !== undefined) return cached;
    let waiting = this.pending.get(record.id);
    if (waiting === undefined) {
      waiting = this.decrypt(record).finally(() => this.pending.delete(record.id));
      this.pending.set(record.id, waiting);
    }
    return waiting;
  }

  private async decrypt(record: ProviderKeyRecord): Promise<ProviderCredential> {
    // Known unreadable (its master key version was declared lost): not a new failure to report.
    if (record.status === 'needs_reentry') throw new KeywayError('no_provider_available', { detail: `Provider key ${record.id} must be entered again.` });
    const sealed = this.store.current.secrets.get(record.id);
    if (sealed === undefined) throw new KeywayError('no_provider_available', { detail: `Provider key ${record.id} was removed.` });
    const backend = this.backends.get(sealed.backend);
    if (backend === undefined) {
      this.failures.set(record.id, sealed.ciphertext);
      throw new KeywayError('internal_error', { detail: `crypto backend '${sealed.backend}' of key ${record.id} is not loaded`, requestId: '-' });
    }
    let apiKey: string;
    try {
      apiKey = await backend.decrypt(sealed.ciphertext, sealed.binding);
    } catch {
      this.failures.set(record.id, sealed.ciphertext);
      throw new KeywayError('internal_error', { detail: `provider key ${record.id} could not be decrypted; check the master key`, requestId: '-' });
    }
    this.failures.delete(record.id);
    const credential: ProviderCredential = { ...record, apiKey };
    if (!this.remembered.has(record.id)) {
      rememberSecret(apiKey);
      this.remembered.set(record.id, apiKey);
    }
    this.cache.set(record.id, credential);
    return credential;
  }

  forget(id: string): void {
    this.cache.delete(id);
  }

  /** Ids of stored provider keys whose last decryption failed (wrong or missing master key). */
  undecryptable(): string[] {
    return [...this.failures.keys()];
  }

  get size(): number {
    return this.cache.size;
  }
}
