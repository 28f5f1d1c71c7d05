// The key-source contract: where a provider key comes from when Keyway does not hold it itself, or
// where a fresh one comes from when a schedule rotates it. A provider key stored as a reference (never-
// store mode) names a source and a locator; rotation schedules ask the same source for the next key.

/** Where a key lives, in a source's own terms; never the key itself, so it may be stored and shown. */
export interface KeyReference {
  /** The key source's name (`env`, `file`, `command`, `vault-kv`, `openai-admin`, …). */
  source: string;
  /** What the source reads: a variable name, a file path, a command, a Vault path, a project id. */
  locator: string;
  /** Source-specific options (a Vault field or mount, a JSON pointer…), validated by the source. */
  options?: Record<string, unknown>;
}

export interface FetchedKey {
  apiKey: string;
  /** The source's version of the key when it has one (Vault KV version, minted key id), for logs and status. */
  version?: string;
}

export interface KeySourceContext {
  accountId: string | null;
  provider: string;
  /** The Keyway provider key the reference belongs to, when there is one. */
  keyId?: string;
}

export interface KeySource {
  name: string;
  /**
   * A message saying what is wrong with the reference, or undefined when the source can use it. With a
   * `context`, also whether that account (or the platform: `accountId` null) may use it, when the source
   * scopes references by account: the start warns about stored references their account may not use
   * (they do not resolve), and a rotation schedule's is refused when it is made. Reads nothing: the
   * answer must not depend on what exists outside the account's scope.
   */
  validate(reference: KeyReference, context?: KeySourceContext): string | undefined;
  /**
   * The key the reference names now. Rejects with a message that never contains key material. The core
   * drops trailing line ends and refuses a key that is not printable ASCII without spaces (fetched-keys.ts).
   * A source whose references name things of several accounts (files, variables, secret paths) answers
   * only within the context's account's own, and refuses the rest as it refuses a missing one.
   */
  fetch(reference: KeyReference, context: KeySourceContext): Promise<FetchedKey>;
  /** Optional: creates a new key (a provider admin API), for rotation; sources that only read have none. */
  mint?(reference: KeyReference, context: KeySourceContext): Promise<FetchedKey>;
  /** Optional: revokes a key this source minted, once rotation retired it. */
  revoke?(reference: KeyReference, version: string, context: KeySourceContext): Promise<void>;
}

/** The key sources loaded, by name: what `services.keySources` answers. */
export interface KeySourceRegistry {
  get(name: string): KeySource | undefined;
  names(): string[];
}

/**
 * The `crypto_backend` of a stored provider key that is a reference, not a ciphertext: its
 * `ciphertext` column holds the KeyReference as JSON and no key material (never-store mode).
 */
export const KEY_REFERENCE_BACKEND = 'key-reference';
/** The `crypto_backend` of a deleted key whose ciphertext was wiped: nothing is left to decrypt. */
export const WIPED_BACKEND = 'wiped';
/** The id routing gives the client's own key from `X-Provider-Key`: it is never stored, and booked with no key id. */
export const CLIENT_PROVIDER_KEY_ID = 'client_key';

/** One time Keyway turned a stored provider key into plaintext in memory: a decryption, or a key-source fetch. */
export interface KeyDecryption {
  keyId: string;
  provider: string;
  /** The key's account; null for the operator's platform keys. */
  keyAccountId: string | null;
  /** `decrypt` (a ciphertext opened by the crypto backend) or `fetch` (a reference resolved by a key source). */
  kind: 'decrypt' | 'fetch';
  /** The key source of a reference, or the crypto backend of a ciphertext. */
  via: string;
  /** The request that caused it, and its principal; undefined for background work (model listing, probes). */
  requestId: string | undefined;
  principalKeyId: string | undefined;
  principalAccountId: string | undefined;
  ok: boolean;
  /** ISO 8601. */
  occurredAt: string;
}

/** Sees every decryption (key-vault cache miss): in-memory work only (queue it), never awaited. */
export type KeyDecryptionObserver = (event: KeyDecryption) => void;

/** Who is asking for a key: passed to the key vault so a decryption can be attributed. */
export interface KeyUse {
  requestId: string;
  principalKeyId: string;
  principalAccountId: string;
}
