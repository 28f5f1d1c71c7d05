// Seals small secrets that are not provider keys (an account's webhook secret) with the crypto backend
// new provider keys are sealed with, so they share its master key, versions and binding rules. Once
// opened, a value is redacted from every log line and error text like a decrypted provider key.

import type { CryptoBackend } from '../spec/crypto-backend.ts';
import type { SecretSealer } from '../spec/services.ts';
import { rememberSecret } from './secret-values.ts';
import { KeywayError } from '../errors.ts';
import { absentKeyVersion, ROLLING_RESTART_DOC } from './absent-key-version.ts';

export function createSecretSealer(backends: ReadonlyMap<string, CryptoBackend>, currentBackend: string): SecretSealer {
  const remembered = new Set<string>();
  const backendNamed = (name: string): CryptoBackend => {
    const backend = backends.get(name);
    if (backend === undefined) throw new Error(`crypto backend '${name}' is not loaded; the secret cannot be opened`);
    return backend;
  };
  /**
   * A value sealed under a master key version this instance lacks (a rolling restart onto a new one) is
   * a 503 that says so, not a 500: an instance restarted with the version opens it.
   */
  const decrypt = async (sealed: { backend: string; ciphertext: string }, binding: string): Promise<string> => {
    const backend = backendNamed(sealed.backend);
    try {
      return await backend.decrypt(sealed.ciphertext, binding);
    } catch (error) {
      const absent = absentKeyVersion(sealed.backend, backend, sealed.ciphertext);
      if (absent === undefined) throw error;
      throw new KeywayError('not_ready', {
        detail: `This value is sealed under ${absent.description}; an instance restarted with that version opens it (${ROLLING_RESTART_DOC}).`,
      });
    }
  };
  return {
    async seal(plaintext, binding) {
      const backend = backendNamed(currentBackend);
      return { backend: currentBackend, keyVersion: backend.currentKeyVersion(), ciphertext: await backend.encrypt(plaintext, binding) };
    },
    async open(sealed, binding) {
      const plaintext = await decrypt(sealed, binding);
      if (!remembered.has(plaintext)) {
        remembered.add(plaintext);
        rememberSecret(plaintext);
      }
      return plaintext;
    },
    openContent: decrypt,
  };
}
