import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type CryptoBackend } from '../../core/spec/plugin.ts';
import { decryptEnvelope, encryptEnvelope, EnvelopeError, envelopeKeyVersion, rewrapEnvelope, type MasterKeyring } from './envelope.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeKeyring, discardGeneratedKeyFile, GENERATED_KEY_FILE_NAME, loadMasterKeyring, type MasterKeyConfig } from './master-key.ts';

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

/**
 * With another backend active (KEYWAY_CRYPTO_BACKEND) and no local key anywhere, generating one would
 * only leave a stray key file behind (or refuse a shared database): the local backend then stays
 * loaded without versions, and any row it once sealed is refused at start until its key is set.
 */
function dormant(config: MasterKeyConfig, env: Readonly<Record<string, string | undefined>>, dataDirectory: string): boolean {
  const active = env.KEYWAY_CRYPTO_BACKEND?.trim();
  if (active === undefined || active === '' || active === 'local') return false;
  const configured = [config.masterKeys, config.masterKey, config.masterKeyFile, env.KEYWAY_MASTER_KEYS, env.KEYWAY_MASTER_KEY, env.KEYWAY_MASTER_KEY_FILE];
  return configured.every((value) => value === undefined || value.trim() === '') && !existsSync(join(dataDirectory, GENERATED_KEY_FILE_NAME));
}

function dormantLocalBackend(): CryptoBackend {
  const refuse = async (): Promise<never> => {
    throw new EnvelopeError('No local master key is configured (another crypto backend is active).');
  };
  return {
    name: 'local',
    encrypt: refuse,
    decrypt: refuse,
    currentKeyVersion: () => 0,
    keyVersions: () => [],
    validatedModule: { validated: false, description: 'crypto-local is loaded but has no master key' },
  };
}

export const cryptoLocalPlugin = definePlugin({
  name: 'crypto-local',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'crypto-backend',
  environment: [
    { name: 'KEYWAY_MASTER_KEY', description: 'The master key (v<N>:base64, or a bare key)' },
    { name: 'KEYWAY_MASTER_KEYS', description: 'Every master key version, newest last' },
    { name: 'KEYWAY_MASTER_KEY_FILE', description: 'A file holding the keyring (mode 0600)' },
    { name: 'KEYWAY_PREVIOUS_MASTER_KEYS', description: 'Older master keys, kept for decryption only' },
  ],
  description: 'Envelope encryption (AES-256-GCM) of provider keys under a local, versioned master key.',
  configSchema: cryptoLocalConfigSchema,
  setup(context) {
    if (dormant(context.config, context.env, context.dataDirectory)) {
      context.logger.info('Another crypto backend is active and no local master key is configured: crypto-local stays dormant.');
      return { cryptoBackend: dormantLocalBackend() };
    }
    const keyring = loadMasterKeyring({
      config: context.config,
      env: context.env,
      dataDirectory: context.dataDirectory,
      reporter: { warn: (message) => context.logger.warn(message), info: (message) => context.logger.info(message) },
    });
    context.logger.info(`Master keyring loaded (${describeKeyring(keyring)}).`);
    const backend = createLocalCryptoBackend(keyring);
    const generated = keyring.generatedFile;
    if (generated === undefined) return { cryptoBackend: backend };
    const discardGeneratedKey = (): void => {
      if (discardGeneratedKeyFile(generated))
        context.logger.warn(`Removed the master key generated for this start (${generated.path}): the start was refused.`);
    };
    return { cryptoBackend: { ...backend, discardGeneratedKey } };
  },
});
