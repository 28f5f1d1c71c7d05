// HashiCorp Vault Transit as a crypto backend (backend.ts). Configured by KEYWAY_VAULT_* variables or
// this plugin's settings in the KEYWAY_CONFIG file; made the active backend with
// KEYWAY_CRYPTO_BACKEND=vault-transit; it also runs, to open what it sealed, when a Transit key is named
// (KEYWAY_VAULT_TRANSIT_KEY or the `key` setting). Otherwise it stays loaded but dormant (no versions),
// so a database that never used it is unaffected and one that did is refused at start until it is
// configured again.

import { Type } from '@sinclair/typebox';
import { readFileSync } from 'node:fs';
import { definePlugin, PLUGIN_API_VERSION, type CryptoBackend } from '../../core/spec/plugin.ts';
import type { ValidatedCryptoModule } from '../../core/spec/crypto-backend.ts';
import { createVaultTransitBackend, VAULT_BACKEND_NAME } from './backend.ts';
import { TransitClient } from './client.ts';
import { integerSetting, onOffSetting, SettingError } from '../../core/spec/settings.ts';

export { createVaultTransitBackend, DECRYPTION_FAILED, VAULT_BACKEND_NAME } from './backend.ts';
export { TransitClient, TransitError } from './client.ts';

export const vaultTransitConfigSchema = Type.Object(
  {
    address: Type.Optional(Type.String({ description: 'Vault address, e.g. https://vault.internal:8200. Default: KEYWAY_VAULT_ADDR.' })),
    tokenFile: Type.Optional(Type.String({ description: 'File holding the Vault token (Vault Agent sink). Default: KEYWAY_VAULT_TOKEN_FILE.' })),
    namespace: Type.Optional(Type.String({ description: 'Vault Enterprise namespace. Default: KEYWAY_VAULT_NAMESPACE.' })),
    mount: Type.Optional(Type.String({ description: "Transit mount path. Default: KEYWAY_VAULT_TRANSIT_MOUNT or 'transit'." })),
    key: Type.Optional(Type.String({ description: "Transit key name. Default: KEYWAY_VAULT_TRANSIT_KEY or 'keyway'." })),
    fips: Type.Optional(Type.Boolean({ description: 'The Vault deployment is a FIPS 140 validated build. Default: KEYWAY_VAULT_FIPS.' })),
    fipsCertificate: Type.Optional(Type.String({ description: 'The CMVP certificate of that build. Default: KEYWAY_VAULT_FIPS_CERTIFICATE.' })),
  },
  { additionalProperties: false },
);

type VaultConfig = typeof vaultTransitConfigSchema.static;

/** A setting of this backend that cannot be used: the start stops with its line alone (core/spec/settings.ts). */
export class VaultTransitConfigError extends SettingError {
  override name = 'VaultTransitConfigError';
}

function present(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Where the token comes from: the variable once, or the file at every call (Vault Agent renews it). */
function tokenSource(config: VaultConfig, env: Readonly<Record<string, string | undefined>>, active: boolean): { token: () => string; source: string } {
  const inline = present(env.KEYWAY_VAULT_TOKEN) ?? (active ? present(env.VAULT_TOKEN) : undefined);
  const file = present(config.tokenFile) ?? present(env.KEYWAY_VAULT_TOKEN_FILE);
  if (inline !== undefined && file !== undefined) throw new VaultTransitConfigError('Set either KEYWAY_VAULT_TOKEN or KEYWAY_VAULT_TOKEN_FILE, not both.');
  if (inline !== undefined) return { token: () => inline, source: 'token from KEYWAY_VAULT_TOKEN' };
  if (file === undefined) throw new VaultTransitConfigError('Vault Transit needs a token: set KEYWAY_VAULT_TOKEN or KEYWAY_VAULT_TOKEN_FILE.');
  const read = (): string => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new VaultTransitConfigError(`KEYWAY_VAULT_TOKEN_FILE names ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
  };
  if (read() === '') throw new VaultTransitConfigError(`KEYWAY_VAULT_TOKEN_FILE names ${file}, which is empty.`);
  return { token: read, source: `token file ${file}` };
}

/**
 * Keyway cannot tell a FIPS build of Vault from another one over its API, so the operator declares it
 * (with the certificate, which auditors check); without the declaration the backend says "not validated".
 */
function declaredModule(fips: boolean, certificate: string | undefined, standard: string, address: string): ValidatedCryptoModule {
  if (!fips) {
    return {
      validated: false,
      description: `Vault Transit at ${address} wraps the data keys; the secrets are sealed with AES-256-GCM in Keyway's runtime (not a validated module). Set KEYWAY_VAULT_FIPS=true for a FIPS build of Vault.`,
    };
  }
  return {
    validated: true,
    standard,
    certificate,
    description: `Vault Transit at ${address} (declared a FIPS build by the operator) encrypts every secret itself with AES-256-GCM under a derived key; Keyway's runtime does no cryptography on them.`,
  };
}

function dormantBackend(): CryptoBackend {
  const refuse = async (): Promise<never> => {
    throw new Error('The vault-transit crypto backend is not configured: set KEYWAY_VAULT_ADDR and a token (docs/key-lifecycle.md).');
  };
  return {
    name: VAULT_BACKEND_NAME,
    encrypt: refuse,
    decrypt: refuse,
    currentKeyVersion: () => 0,
    keyVersions: () => [],
    validatedModule: { validated: false, description: 'vault-transit is loaded but not configured' },
  };
}

export const vaultTransitPlugin = definePlugin({
  name: 'crypto-vault-transit',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'crypto-backend',
  environment: [
    { name: 'KEYWAY_VAULT_ADDR', description: 'The Vault server address' },
    { name: 'KEYWAY_VAULT_TOKEN', description: 'The Vault token' },
    { name: 'KEYWAY_VAULT_TOKEN_FILE', description: 'A file holding the Vault token' },
    { name: 'KEYWAY_VAULT_NAMESPACE', description: 'The Vault Enterprise namespace' },
    { name: 'KEYWAY_VAULT_TRANSIT_MOUNT', description: 'The Transit engine mount' },
    { name: 'KEYWAY_VAULT_TRANSIT_KEY', description: 'The Transit key name' },
    { name: 'KEYWAY_VAULT_TIMEOUT_MS', description: 'How long a Vault call may take' },
    { name: 'KEYWAY_VAULT_DATA_KEY_TTL_MS', description: 'How long an unwrapped data key is kept in memory' },
    { name: 'KEYWAY_VAULT_FIPS', description: 'The Vault deployment is a FIPS 140 validated build' },
    { name: 'KEYWAY_VAULT_FIPS_CERTIFICATE', description: 'The CMVP certificate number of that build' },
    { name: 'KEYWAY_VAULT_FIPS_STANDARD', description: 'The FIPS standard the build is validated against' },
  ],
  description: "Data keys wrapped by HashiCorp Vault's Transit engine; FIPS-validated when Vault is a FIPS build and declared so.",
  configSchema: vaultTransitConfigSchema,
  async setup(context) {
    const { config, env } = context;
    // Read before the backend decides whether it runs, so a bad value is named even while it sleeps.
    const fipsVariable = onOffSetting('KEYWAY_VAULT_FIPS', env.KEYWAY_VAULT_FIPS, false);
    const timeoutMs = integerSetting('KEYWAY_VAULT_TIMEOUT_MS', env.KEYWAY_VAULT_TIMEOUT_MS, 5_000, 1, 600_000);
    const dataKeyTtlMs = integerSetting('KEYWAY_VAULT_DATA_KEY_TTL_MS', env.KEYWAY_VAULT_DATA_KEY_TTL_MS, 300_000, 0, 86_400_000);
    const active = present(env.KEYWAY_CRYPTO_BACKEND) === VAULT_BACKEND_NAME;
    // KEYWAY_VAULT_ADDR alone does not wake it: the same Vault may serve only the vault-kv key source.
    // It runs when it seals new keys, or when a Transit key is named (rows it sealed before still open).
    const named = present(config.key) !== undefined || present(env.KEYWAY_VAULT_TRANSIT_KEY) !== undefined;
    if (!active && !named) return { cryptoBackend: dormantBackend() };
    const address = present(config.address) ?? present(env.KEYWAY_VAULT_ADDR) ?? (active ? present(env.VAULT_ADDR) : undefined);
    if (address === undefined) {
      if (active) throw new VaultTransitConfigError('KEYWAY_CRYPTO_BACKEND is vault-transit, but KEYWAY_VAULT_ADDR is not set.');
      return { cryptoBackend: dormantBackend() };
    }
    if (!/^https?:\/\//.test(address))
      throw new VaultTransitConfigError(`KEYWAY_VAULT_ADDR must start with https:// (or http:// for a local dev server); got ${JSON.stringify(address)}.`);
    const { token, source } = tokenSource(config, env, active);
    const fips = config.fips ?? fipsVariable;
    const certificate = present(config.fipsCertificate) ?? present(env.KEYWAY_VAULT_FIPS_CERTIFICATE);
    if (fips && certificate === undefined) {
      throw new VaultTransitConfigError(
        'KEYWAY_VAULT_FIPS=true needs KEYWAY_VAULT_FIPS_CERTIFICATE: the CMVP certificate number of the Vault build, which auditors check.',
      );
    }
    const keyName = present(config.key) ?? present(env.KEYWAY_VAULT_TRANSIT_KEY) ?? 'keyway';
    const mount = present(config.mount) ?? present(env.KEYWAY_VAULT_TRANSIT_MOUNT) ?? 'transit';
    const client = new TransitClient({
      address,
      token,
      namespace: present(config.namespace) ?? present(env.KEYWAY_VAULT_NAMESPACE) ?? (active ? present(env.VAULT_NAMESPACE) : undefined),
      mount,
      key: keyName,
      timeoutMs,
      fetch: context.fetch,
    });
    const key = await client.readKey();
    if (fips && (key.type !== 'aes256-gcm96' || !key.derived)) {
      throw new VaultTransitConfigError(
        `Under KEYWAY_VAULT_FIPS the Transit key must be aes256-gcm96 and derived, so Vault binds each secret to its row with an approved KDF; '${keyName}' is ${key.type}${key.derived ? '' : ', not derived'}. Create one: vault write ${mount}/keys/${keyName}-fips type=aes256-gcm96 derived=true`,
      );
    }
    const backend = createVaultTransitBackend({
      client,
      key,
      mode: fips ? 'direct' : 'envelope',
      dataKeyTtlMs,
      validatedModule: declaredModule(fips, certificate, present(env.KEYWAY_VAULT_FIPS_STANDARD) ?? 'FIPS 140-2', address),
      source,
    });
    context.logger.info(
      { address, mount, key: keyName, latestVersion: key.latestVersion, derived: key.derived, mode: backend.mode },
      'Vault Transit crypto backend ready',
    );
    return { cryptoBackend: backend };
  },
});
