// The crypto-backend contract: seals provider keys at rest.

import type { Store } from './store.ts';

export interface CryptoBackend {
  name: string;
  /** Encrypts `plaintext`, binding the ciphertext to `binding` (the row it belongs to). */
  encrypt(plaintext: string, binding: string): Promise<string>;
  /** Rejects when the ciphertext was altered, moved to another binding, or sealed under an unknown key. */
  decrypt(ciphertext: string, binding: string): Promise<string>;
  /** The key version new ciphertexts are written under. */
  currentKeyVersion(): number;
  /**
   * Optional: every key version this backend can decrypt, the current one included. Without it the
   * core assumes only `currentKeyVersion()`. The core keeps a key check per version (docs/security.md).
   */
  keyVersions?(): readonly number[];
  /** Optional: `encrypt` under an older configured version, so a key check can be written for it. */
  encryptWithKeyVersion?(plaintext: string, binding: string, keyVersion: number): Promise<string>;
  /** Optional: where a key version comes from (a variable, a setting, a file path), never the key itself. */
  keySource?(keyVersion: number): string | undefined;
  /**
   * Optional: whether the cryptography runs in a validated module (FIPS 140-2/140-3). Absent means not
   * validated: the compliance setting `encryption: FIPS-140-2` is met only when this says `validated: true`.
   */
  validatedModule?: ValidatedCryptoModule;
  /**
   * Optional: re-seals a ciphertext of this backend under its current key version, for master-key
   * rotation. Cheap where the envelope allows it (only the wrapped data key changes; the sealed secret
   * does not). Rejects like `decrypt` when the ciphertext does not open. Without it the core decrypts
   * and encrypts again.
   */
  rewrap?(ciphertext: string, binding: string): Promise<string>;
  /** Optional: many re-wraps in one round trip (a key service's batch call); one result per item, in order. */
  rewrapMany?(items: readonly SealedItem[]): Promise<RewrapResult[]>;
  /** Optional: the key version a ciphertext of this backend names, read without any key; undefined when it names none. */
  keyVersionOf?(ciphertext: string): number | undefined;
  /** Optional: re-reads the key versions from an external key service (called before a rotation). */
  refreshKeyVersions?(): Promise<void>;
  /**
   * Optional: the start was refused because the configured keys do not match what is stored, before
   * anything was sealed under them: take back a key this start generated (a key file written for it),
   * so the next start does not present it as this database's key. Offered only by a backend whose key
   * this start generated: the refusal then says the database's key is missing rather than wrong.
   */
  discardGeneratedKey?(): void;
}

/** A ciphertext and the binding it was sealed with. */
export interface SealedItem {
  ciphertext: string;
  binding: string;
}

/** One re-wrap's outcome: the new ciphertext, or why it failed (never key material). */
export type RewrapResult = { ciphertext: string } | { error: string };

/**
 * Where ciphertexts live, so a master-key rotation can re-wrap all of them: the core registers the
 * provider keys; a plugin that seals its own secrets with the crypto backend contributes a holder.
 */
export interface CiphertextHolder {
  /** Unique, for progress and failure reports: `provider_keys`, `<plugin>:<table>`. */
  name: string;
  /**
   * Up to `limit` sealed values in a stable order of the holder's choice, the first after `cursor`
   * (empty string: from the start); each value's `cursor` (default: its id) is where the next page starts.
   */
  list(cursor: string, limit: number): Promise<HeldCiphertext[]>;
  /** Stores re-sealed values where the stored ciphertext is still the expected one; answers the ids stored. */
  replace(updates: readonly CiphertextReplacement[]): Promise<string[]>;
  /**
   * Optional: the store tables its values live in. After a rotation the store is asked to reclaim
   * them (Store.reclaimReplacedRows), so no copy of a value under the retired version stays in the
   * files; PostgreSQL vacuums only the tables named (the embedded store's WAL and VACUUM cover every table).
   */
  tables?: readonly string[];
  /**
   * Optional: how many of its values each backend and key version seals, counted where they are kept
   * (a GROUP BY over a key-version column), so the start's check for a removed master key version
   * costs one query however many values there are. Counts only what must still open: not values
   * waiting to be entered again, retired or holding no ciphertext. `store` is passed because the check
   * runs before `services.store` exists; `versionOf` reads the version from a ciphertext whose row
   * recorded none. With `record` (the start, once its check passed) the holder may store the versions
   * it had to read that way, so later counts need not read them again. Without this method
   * the core pages through `list` (reading every ciphertext, decrypting none).
   */
  countByVersion?(store: Pick<Store, 'query'>, versionOf: CiphertextVersionReader, options?: { record?: boolean }): Promise<HeldVersionCount[]>;
}

/** The key version a ciphertext names, read by the backend that sealed it; undefined when it cannot tell. */
export type CiphertextVersionReader = (backend: string, ciphertext: string) => number | undefined;

/** How many values of one holder one backend and key version seal. */
export interface HeldVersionCount {
  backend: string;
  /** Undefined when neither the holder nor the backend can tell the version. */
  keyVersion: number | undefined;
  count: number;
}

export interface HeldCiphertext extends SealedItem {
  id: string;
  /** Where the next page starts after this value; its id when absent. */
  cursor?: string;
  /** The crypto backend that sealed it. */
  backend: string;
  /** The key version the holder recorded, used when the backend cannot read it from the ciphertext. */
  keyVersion?: number;
  /** Known to be unreadable and waiting for its owner to enter the secret again: skipped, not failed. */
  needsReentry?: boolean;
  /** Kept for history only (a deleted key): re-wrapped when it opens, skipped rather than failed when its key version is gone. */
  retired?: boolean;
  /** Holds no ciphertext (a key held as a reference, a wiped deleted key): nothing to re-wrap or count. */
  noCiphertext?: boolean;
}

export interface CiphertextReplacement {
  id: string;
  expectedCiphertext: string;
  ciphertext: string;
  backend: string;
  keyVersion: number;
}

/** What a crypto backend declares about the module its cryptography runs in. */
export interface ValidatedCryptoModule {
  validated: boolean;
  /** `FIPS 140-2` or `FIPS 140-3`, when validated. */
  standard?: string;
  /** The module's certificate number, when validated. */
  certificate?: string;
  /** The module in words: what runs the algorithms. */
  description: string;
}
