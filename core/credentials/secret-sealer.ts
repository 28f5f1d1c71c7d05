// Seals small secrets that are not provider keys (an account's webhook secret) with the crypto backend
// new provider keys are sealed with, so they share its master key, versions and binding rules. Once
// opened, a value is redacted from every log line and error text like a decrypted provider key.

import type { CryptoBackend } from '../spec/crypto-backend.ts';
import type { SecretSealer } from '../spec/services.ts';
import { rememberSecret } from './secret-values.ts';

export function createSecretSealer(backends: ReadonlyMap<string, CryptoBackend>, currentBackend: string): SecretSealer {
  const remembered = new Set<string>();
  const backendNamed = (name: string): CryptoBackend => {
    const backend = backends.get(name);
    if (backend === undefined) throw new Error(`crypto backend '${name}' is not loaded; the secret cannot be opened`);
    return backend;
  };
  return {
    async seal(plaintext, binding) {
      const backend = backendNamed(currentBackend);
      return { backend: currentBackend, keyVersion: backend.currentKeyVersion(), ciphertext: await backend.encrypt(plaintext, binding) };
    },
    async open(sealed, binding) {
      const plaintext = await backendNamed(sealed.backend).decrypt(sealed.ciphertext, binding);
      if (!remembered.has(plaintext)) {
        remembered.add(plaintext);
        rememberSecret(plaintext);
      }
      return plaintext;
    },
    openContent: (sealed, binding) => backendNamed(sealed.backend).decrypt(sealed.ciphertext, binding),
  };
}
