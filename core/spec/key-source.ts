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
  /** A message saying what is wrong with the reference, or undefined when the source can use it. */
  validate(reference: KeyReference): string | undefined;
  /** The key the reference names now. Rejects with a message that never contains key material. */
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
