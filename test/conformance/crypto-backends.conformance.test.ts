// The in-tree crypto backend through the crypto-backend conformance suite (crypto-backend.ts), set
// up the way the gateway does it: through the plugin's setup, with a generated master key in
// KEYWAY_MASTER_KEY and a scratch data directory.

import { afterAll } from 'bun:test';
import { createLogger } from '../../core/logger.ts';
import { standaloneServices } from '../../core/services.ts';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';
import { cryptoLocalPlugin } from '../../plugins/crypto-local/index.ts';
import { generateMasterKey, temporaryDirectories } from '../crypto/helpers.ts';
import { describeCryptoBackendConformance } from './crypto-backend.ts';

const directories = temporaryDirectories();
afterAll(() => directories.cleanup());

async function createLocalBackend(): Promise<CryptoBackend> {
  // Warnings and above only: the suite should not print the keyring description on every run.
  const logger = createLogger('warn', { write: () => undefined } as never);
  const contributions = await cryptoLocalPlugin.setup?.({
    config: {},
    logger,
    fetch,
    env: { KEYWAY_MASTER_KEY: generateMasterKey() },
    dataDirectory: directories.make(),
    services: standaloneServices({ logger }),
  });
  const backend = contributions?.cryptoBackend;
  if (backend === undefined) throw new Error('crypto-local contributed no crypto backend');
  return backend;
}

describeCryptoBackendConformance('crypto-local', createLocalBackend);
