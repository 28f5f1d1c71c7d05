import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type CryptoBackend } from '../../core/spec/plugin.ts';
import { decryptEnvelope, encryptEnvelope, EnvelopeError, envelopeKeyVersion, rewrapEnvelope, type MasterKeyring } from './envelope.ts';
import { describeKeyring, loadMasterKeyring } from './master-key.ts';

export {
  decryptEnvelope,
  DECRYPTION_FAILED_MESSAGE,
  encryptEnvelope,
  EnvelopeError,
  envelopeKeyVersion,
  rewrapEnvelope,
  type MasterKeyring,
} from './envelope.ts';
export { generateMasterKey, loadMasterKeyring, MasterKeyError, parseKeyring, parseMasterKey, type MasterKeyConfig } from './master-key.ts';

export const cryptoLocalConfigSchema = Type.Object(
  {
    masterKeys: Type.Optional(
      Type.String({
        description: 'Every master key version, comma-separated version:key (2:base64 or v2:base64), newest last. Default: KEYWAY_MASTER_KEYS.',
      }),
    ),
    masterKey: Type.Optional(
      Type.String({ description: 'Keyring: one base64 key (v1) or v<N>:base64 entries separated by commas. Default: KEYWAY_MASTER_KEY.' }),
    ),
    masterKeyFile: Type.Optional(Type.String({ description: 'Path of a file holding the keyring (mode 0600). Default: KEYWAY_MASTER_KEY_FILE.' })),
    previousKeys: Type.Optional(
      Type.String({ description: 'Older keys, v<N>:base64 entries, kept for decryption only. Default: KEYWAY_PREVIOUS_MASTER_KEYS.' }),
    ),
  },
  { additionalProperties: false },
);

/**
 * The `local` backend over a loaded keyring. The interface is asynchronous so a KMS backend can
 * await a network call; this one does its work synchronously inside, and a throw becomes a rejection.
 */
export function createLocalCryptoBackend(keyring: MasterKeyring): CryptoBackend {
  return {
    name: 'local',
    encrypt: async (plaintext, binding) => encryptEnvelope(plaintext, binding, keyring),
    decrypt: async (ciphertext, binding) => decryptEnvelope(ciphertext, binding, keyring),
    currentKeyVersion: () => keyring.current,
    keyVersions: () => [...keyring.keys.keys()].sort((left, right) => left - right),
    encryptWithKeyVersion: async (plaintext, binding, keyVersion) => {
      if (!keyring.keys.has(keyVersion)) throw new EnvelopeError(`Master key v${keyVersion} is not configured.`);
      return encryptEnvelope(plaintext, binding, { ...keyring, current: keyVersion });
    },
    keySource: (keyVersion) => keyring.sources?.get(keyVersion),
    rewrap: async (ciphertext, binding) => rewrapEnvelope(ciphertext, binding, keyring),
    keyVersionOf: (ciphertext) => {
      try {
        return envelopeKeyVersion(ciphertext);
      } catch {
        return undefined;
      }
    },
    // Bun's built-in crypto is BoringSSL as compiled into the runtime, not a FIPS 140 validated module build.
    validatedModule: {
      validated: false,
      description: "AES-256-GCM through the runtime's built-in cryptography (BoringSSL in Bun), which is not a FIPS 140 validated module",
    },
  };
}

export const cryptoLocalPlugin = definePlugin({
  name: 'crypto-local',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'crypto-backend',
  description: 'Envelope encryption (AES-256-GCM) of provider keys under a local, versioned master key.',
  configSchema: cryptoLocalConfigSchema,
  setup(context) {
    const keyring = loadMasterKeyring({
      config: context.config,
      env: context.env,
      dataDirectory: context.dataDirectory,
      reporter: { warn: (message) => context.logger.warn(message), info: (message) => context.logger.info(message) },
    });
    context.logger.info(`Master keyring loaded (${describeKeyring(keyring)}).`);
    return { cryptoBackend: createLocalCryptoBackend(keyring) };
  },
});
