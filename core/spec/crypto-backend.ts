// The crypto-backend contract: seals provider keys at rest.

export interface CryptoBackend {
  name: string;
  /** Encrypts `plaintext`, binding the ciphertext to `binding` (the row it belongs to). */
  encrypt(plaintext: string, binding: string): Promise<string>;
  /** Rejects when the ciphertext was altered, moved to another binding, or sealed under an unknown key. */
  decrypt(ciphertext: string, binding: string): Promise<string>;
  /** The key version new ciphertexts are written under. */
  currentKeyVersion(): number;
}
