import { forgetSecret, rememberSecret } from './secret-values.ts';
import { forgetMaskedForms, rememberMaskedForms } from './masked-keys.ts';
import { LRUCache } from 'lru-cache';
import type { ConfigSnapshots } from './snapshot.ts';
import { KeywayError } from '../errors.ts';
import type { CryptoBackend, KeyDecryption, KeyDecryptionObserver, KeySource, KeyUse, ProviderCredential, ProviderKeyRecord } from '../spec/plugin.ts';
import { KEY_REFERENCE_BACKEND } from '../spec/key-source.ts';
import { parseStoredReference } from './reference-format.ts';
import { clientKeyOf } from './client-keys.ts';
import { absentKeyVersion, ROLLING_RESTART_DOC } from './absent-key-version.ts';

/** How long a reference that failed to resolve is answered as failed without asking its source again. */
const UNRESOLVED_RETRY_MS = 5_000;
/**
 * How long a key sealed under a master key version this instance lacks is skipped before it is tried
 * again: the local keyring only changes at a restart, but a key service (Vault Transit) may gain the
 * version meanwhile.
 */
const MISSING_VERSION_RETRY_MS = 60_000;

/**
 * A key this instance cannot use whatever the request: sealed under a master key version it does not
 * have. The attempt loop skips the candidate (the next one may serve), whatever the request's
 * fallback reasons: no upstream was asked, and the same key works on the instances that have it.
 */
export class KeyUnusableHere extends KeywayError {
  constructor(detail: string) {
    super('no_provider_available', { detail });
  }
}

/** What to say about a key sealed under a master key version this instance lacks: in an answer, and in a list of reasons. */
interface MissingVersion {
  detail: string;
  reason: string;
}

function missingVersion(keyId: string, backendName: string, backend: CryptoBackend, ciphertext: string): MissingVersion | undefined {
  const absent = absentKeyVersion(backendName, backend, ciphertext);
  if (absent === undefined) return undefined;
  const reason = `key ${keyId} is sealed under ${absent.description}`;
  return { reason, detail: `Provider ${reason}: it is not used here until this instance is restarted with that version (${ROLLING_RESTART_DOC}).` };
}

/** A decrypted key, redacted by value and in its masked forms but the listing's own (`listed`). */
function rememberKey(apiKey: string, listed: string | undefined): void {
  rememberSecret(apiKey);
  rememberMaskedForms(apiKey, listed);
}

function forgetKey(apiKey: string): void {
  forgetSecret(apiKey);
  forgetMaskedForms(apiKey);
}

export interface KeyVaultOptions {
  /** How long a decrypted key stays in memory after it was decrypted. */
  ttlMs: number;
  maxEntries: number;
}

/** Where references are resolved and who hears of each decryption (key access logs). */
export interface KeyVaultExtras {
  keySources?: ReadonlyMap<string, KeySource>;
  observers?: ReadonlyArray<{ plugin: string; value: KeyDecryptionObserver }>;
  now?: () => number;
  onObserverError?: (plugin: string, error: unknown) => void;
  /** A key found sealed under a master key version this instance lacks: told once per key and ciphertext. */
  onMissingKeyVersion?: (record: ProviderKeyRecord, detail: string) => void;
}

/**
 * Decrypts provider keys on first use and keeps them in a bounded, expiring cache, so a request
 * pays for decryption at most once per key per TTL. Entries die with the snapshot that made them:
 * a deleted or rotated key never serves another request.
 */
export class KeyVault {
  private readonly cache: LRUCache<string, ProviderCredential>;
  private readonly pending = new Map<string, Promise<ProviderCredential>>();
  /**
   * Key id → the decrypted value being redacted from every error text and log line, with the masked
   * forms a provider quotes when it refuses the key (`Incorrect API key provided: sk-****abcd`).
   */
  private readonly remembered = new Map<string, string>();
  /**
   * Key id → a reference that just failed to resolve, and until when the failure is answered from
   * memory: a key source that is down is asked again after a few seconds, not on every request.
   */
  private readonly unresolved = new Map<string, { until: number; detail: string }>();
  /** Key id → the ciphertext that last failed to decrypt: /ready is not ready while any remains. */
  private readonly failures = new Map<string, string>();
  /**
   * Key id → a key sealed under a master key version this instance's backend does not have: another
   * instance, restarted with a newer version during a rolling restart, sealed it. It is not usable
   * here rather than broken: routing skips it (`unusableHere`), /ready does not count it, and it is
   * tried again after a while (a key service's versions can grow without a restart).
   */
  private readonly missingVersions = new Map<string, { ciphertext: string; missing: MissingVersion; until: number }>();

  constructor(
    private readonly store: ConfigSnapshots,
    private readonly backends: ReadonlyMap<string, CryptoBackend>,
    options: KeyVaultOptions = { ttlMs: 10 * 60_000, maxEntries: 10_000 },
    private readonly extras: KeyVaultExtras = {},
  ) {
    // Expiry is measured from decryption, read against a clock that ticks once a second: a TTL check
    // per request would otherwise cost a timer read on the hot path.
    this.cache = new LRUCache({ max: options.maxEntries, ttl: options.ttlMs, ttlResolution: 1000 });
    store.onChange((snapshot) => {
      // A changed configuration (a reference converted, replaced or deleted) is worth asking again.
      this.unresolved.clear();
      // A failure is settled once its key is removed or re-sealed; the next use tells again.
      for (const [id, ciphertext] of this.failures) if (snapshot.secrets.get(id)?.ciphertext !== ciphertext) this.failures.delete(id);
      for (const [id, missing] of this.missingVersions) if (snapshot.secrets.get(id)?.ciphertext !== missing.ciphertext) this.missingVersions.delete(id);
      // A key gone from the configuration stops being redacted by value only then: requests still
      // running with it a moment ago may yet see it echoed.
      for (const [id, apiKey] of this.remembered) {
        if (snapshot.keysById.has(id)) continue;
        forgetKey(apiKey);
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
  credential(record: ProviderKeyRecord, use?: KeyUse): ProviderCredential | Promise<ProviderCredential> {
    const clientKey = clientKeyOf(record);
    if (clientKey !== undefined) return { ...record, apiKey: clientKey };
    const cached = this.cache.get(record.id);
    if (cached !== undefined) return cached;
    const failed = this.unresolved.size === 0 ? undefined : this.unresolved.get(record.id);
    if (failed !== undefined) {
      if (failed.until > this.now()) return Promise.reject(new KeywayError('no_provider_available', { detail: failed.detail }));
      this.unresolved.delete(record.id);
    }
    let waiting = this.pending.get(record.id);
    if (waiting === undefined) {
      waiting = this.decrypt(record, use).finally(() => this.pending.delete(record.id));
      this.pending.set(record.id, waiting);
    }
    return waiting;
  }

  private async decrypt(record: ProviderKeyRecord, use: KeyUse | undefined): Promise<ProviderCredential> {
    // Known unreadable (its master key version was declared lost): not a new failure to report.
    if (record.status === 'needs_reentry') throw new KeywayError('no_provider_available', { detail: `Provider key ${record.id} must be entered again.` });
    const sealed = this.store.current.secrets.get(record.id);
    if (sealed === undefined) throw new KeywayError('no_provider_available', { detail: `Provider key ${record.id} was removed.` });
    if (sealed.backend === KEY_REFERENCE_BACKEND) return this.resolveReference(record, sealed.ciphertext, use);
    const backend = this.backends.get(sealed.backend);
    if (backend === undefined) {
      this.failures.set(record.id, sealed.ciphertext);
      throw new KeywayError('internal_error', { detail: `crypto backend '${sealed.backend}' of key ${record.id} is not loaded` });
    }
    const missing = this.missingVersions.size === 0 ? undefined : this.missingVersions.get(record.id);
    if (missing !== undefined && missing.ciphertext === sealed.ciphertext && missing.until > this.now()) {
      throw new KeyUnusableHere(missing.missing.detail);
    }
    let apiKey: string;
    try {
      apiKey = await backend.decrypt(sealed.ciphertext, sealed.binding);
    } catch {
      this.announce(record, 'decrypt', sealed.backend, use, false);
      const missing = missingVersion(record.id, sealed.backend, backend, sealed.ciphertext);
      if (missing !== undefined) {
        this.markMissingVersion(record, sealed.ciphertext, missing);
        throw new KeyUnusableHere(missing.detail);
      }
      this.failures.set(record.id, sealed.ciphertext);
      throw new KeywayError('internal_error', { detail: `provider key ${record.id} could not be decrypted; check the master key` });
    }
    this.missingVersions.delete(record.id);
    this.failures.delete(record.id);
    this.announce(record, 'decrypt', sealed.backend, use, true);
    return this.keep(record, apiKey);
  }

  /**
   * A reference (never-store mode) is resolved through its key source on a cache miss and kept in
   * memory under the same TTL and eviction as a decrypted key; nothing of the key is written anywhere.
   */
  private async resolveReference(record: ProviderKeyRecord, stored: string, use: KeyUse | undefined): Promise<ProviderCredential> {
    const reference = parseStoredReference(stored);
    const source = reference === undefined ? undefined : this.extras.keySources?.get(reference.source);
    if (reference === undefined || source === undefined) {
      this.failures.set(record.id, stored);
      throw new KeywayError('internal_error', {
        detail: `provider key ${record.id} names key source '${reference?.source ?? '?'}', which is not loaded`,
      });
    }
    let apiKey: string;
    try {
      apiKey = (await source.fetch(reference, { accountId: record.accountId, provider: record.provider, keyId: record.id })).apiKey;
    } catch (error) {
      this.announce(record, 'fetch', source.name, use, false);
      // Sources never put a key in their messages (the conformance suite checks); answers and logs are redacted besides.
      const reason = error instanceof Error ? error.message : 'unknown error';
      const detail = `Key source '${source.name}' could not resolve provider key ${record.id}: ${reason}`;
      this.unresolved.set(record.id, { until: this.now() + UNRESOLVED_RETRY_MS, detail });
      throw new KeywayError('no_provider_available', { detail });
    }
    this.failures.delete(record.id);
    this.announce(record, 'fetch', source.name, use, true);
    return this.keep(record, apiKey);
  }

  private markMissingVersion(record: ProviderKeyRecord, ciphertext: string, missing: MissingVersion): void {
    // One warning per key and ciphertext, not one per retry: the entry stays until the key changes.
    const warned = this.missingVersions.get(record.id)?.ciphertext === ciphertext;
    this.missingVersions.set(record.id, { ciphertext, missing, until: this.now() + MISSING_VERSION_RETRY_MS });
    if (!warned) this.extras.onMissingKeyVersion?.(record, missing.detail);
  }

  /**
   * Why this key cannot be used on this instance, when it is sealed under a master key version the
   * instance does not have (found at its last decryption); undefined otherwise. Read by routing for
   * every key it considers, so it costs a size check while no key is affected.
   */
  unusableHere(key: ProviderKeyRecord): string | undefined {
    if (this.missingVersions.size === 0) return undefined;
    const marked = this.missingVersions.get(key.id);
    return marked === undefined || marked.until <= this.now() ? undefined : marked.missing.reason;
  }

  private keep(record: ProviderKeyRecord, apiKey: string): ProviderCredential {
    const credential: ProviderCredential = { ...record, apiKey };
    const previous = this.remembered.get(record.id);
    // A reference may resolve to a new value (a Vault version): the new one is redacted, the old one let go.
    if (previous !== apiKey) {
      rememberKey(apiKey, this.store.current.keysById.get(record.id)?.maskedKey);
      if (previous !== undefined) forgetKey(previous);
      this.remembered.set(record.id, apiKey);
    }
    this.cache.set(record.id, credential);
    return credential;
  }

  /** Observers do in-memory work only; one that throws is reported and never fails the request. */
  private announce(record: ProviderKeyRecord, kind: KeyDecryption['kind'], via: string, use: KeyUse | undefined, ok: boolean): void {
    const observers = this.extras.observers;
    if (observers === undefined || observers.length === 0) return;
    const event: KeyDecryption = {
      keyId: record.id,
      provider: record.provider,
      keyAccountId: record.accountId,
      kind,
      via,
      requestId: use?.requestId,
      principalKeyId: use?.principalKeyId,
      principalAccountId: use?.principalAccountId,
      ok,
      occurredAt: new Date(this.now()).toISOString(),
    };
    for (const observer of observers) {
      try {
        observer.value(event);
      } catch (error) {
        this.extras.onObserverError?.(observer.plugin, error);
      }
    }
  }

  private now(): number {
    return this.extras.now?.() ?? Date.now();
  }

  forget(id: string): void {
    this.unresolved.delete(id);
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
