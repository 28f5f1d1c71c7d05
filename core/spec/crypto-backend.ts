// The crypto-backend contract: seals provider keys at rest.

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
