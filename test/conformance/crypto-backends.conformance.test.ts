// Every in-tree crypto backend through the crypto-backend conformance suite (crypto-backend.ts), set
// up the way the gateway does it, through each plugin's setup: crypto-local with a generated master
// key, and vault-transit against the Vault Transit simulator in each of its modes (envelope with a
// plain key, envelope with a derived key, direct under FIPS).

import { afterAll } from 'bun:test';
import { createLogger } from '../../core/logger.ts';
import { standaloneServices } from '../../core/services.ts';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { cryptoLocalPlugin } from '../../plugins/crypto-local/index.ts';
import { vaultTransitPlugin } from '../../plugins/crypto-vault-transit/index.ts';
import { generateMasterKey, temporaryDirectories } from '../crypto/helpers.ts';
import { startVaultTransitSimulator } from '../simulators/vault-transit.ts';
import { describeCryptoBackendConformance } from './crypto-backend.ts';

const directories = temporaryDirectories();
const VAULT_TOKEN = 'hvs.ConformanceVaultToken0123456789abcdef';
const vault = startVaultTransitSimulator({
  token: VAULT_TOKEN,
  namespace: 'keyway-ns',
  keys: { keyway: {}, 'keyway-derived': { derived: true }, 'keyway-fips': { derived: true, versions: 2 } },
});
afterAll(async () => {
  directories.cleanup();
  await vault.stop();
});

// Warnings and above only: the suite should not print the keyring description on every run.
const logger = createLogger('warn', { write: () => undefined } as never);

async function setUp(plugin: PluginDefinition, env: Record<string, string>): Promise<CryptoBackend> {
  const contributions = await plugin.setup?.({
    config: {},
    logger,
    fetch,
    env,
    dataDirectory: directories.make(),
    services: standaloneServices({ logger }),
  });
  const backend = contributions?.cryptoBackend;
  if (backend === undefined) throw new Error(`${plugin.name} contributed no crypto backend`);
  return backend;
}

const first = generateMasterKey();
const second = generateMasterKey();
describeCryptoBackendConformance('crypto-local', () => setUp(cryptoLocalPlugin as PluginDefinition, { KEYWAY_MASTER_KEY: first }), {
  rotate: () => setUp(cryptoLocalPlugin as PluginDefinition, { KEYWAY_MASTER_KEYS: `1:${first},2:${second}` }),
  keyMaterial: () => [first, second],
});

function vaultEnv(key: string, extra: Record<string, string> = {}): Record<string, string> {
  return { KEYWAY_VAULT_ADDR: vault.url, KEYWAY_VAULT_TOKEN: VAULT_TOKEN, KEYWAY_VAULT_NAMESPACE: 'keyway-ns', KEYWAY_VAULT_TRANSIT_KEY: key, ...extra };
}

function vaultRotation(key: string) {
  return {
    rotate: async (backend: CryptoBackend) => {
      vault.rotate(key);
      await backend.refreshKeyVersions?.();
      return backend;
    },
    keyMaterial: () => [VAULT_TOKEN],
  };
}

describeCryptoBackendConformance('vault-transit (envelope)', () => setUp(vaultTransitPlugin as PluginDefinition, vaultEnv('keyway')), vaultRotation('keyway'));
describeCryptoBackendConformance(
  'vault-transit (envelope, derived key)',
  () => setUp(vaultTransitPlugin as PluginDefinition, vaultEnv('keyway-derived')),
  vaultRotation('keyway-derived'),
);
describeCryptoBackendConformance(
  'vault-transit (direct, FIPS)',
  () => setUp(vaultTransitPlugin as PluginDefinition, vaultEnv('keyway-fips', { KEYWAY_VAULT_FIPS: 'true', KEYWAY_VAULT_FIPS_CERTIFICATE: '4776' })),
  vaultRotation('keyway-fips'),
);
