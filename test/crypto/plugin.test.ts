import { afterEach, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { standaloneServices } from '../../core/services.ts';
import { createLogger } from '../../core/logger.ts';
import { PLUGIN_API_VERSION, type CryptoBackend } from '../../core/spec/plugin.ts';
import { cryptoLocalPlugin } from '../../plugins/crypto-local/index.ts';
import { encodingsOf, generateMasterKey, temporaryDirectories } from './helpers.ts';

const directories = temporaryDirectories();
afterEach(() => directories.cleanup());

const BINDING = 'provider_key:pk_123:account:acc_1';

async function startBackend(env: Record<string, string>, dataDirectory: string): Promise<{ backend: CryptoBackend; logLines: string[] }> {
  const logLines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void logLines.push(line) });
  const contributions = await cryptoLocalPlugin.setup?.({ config: {}, logger, fetch, env, dataDirectory, services: standaloneServices({ logger }) });
  const backend = contributions?.cryptoBackend;
  if (backend === undefined) throw new Error('crypto-local contributed no backend');
  return { backend, logLines };
}

describe('crypto-local plugin', () => {
  test('declares itself as a crypto backend', () => {
    expect(cryptoLocalPlugin.name).toBe('crypto-local');
    expect(cryptoLocalPlugin.kind).toBe('crypto-backend');
    expect(cryptoLocalPlugin.apiVersion).toBe(PLUGIN_API_VERSION);
  });

  test('generates a key on first start, warns without the key, and reuses it', async () => {
    const dataDirectory = join(directories.make(), 'data');
    const first = await startBackend({}, dataDirectory);
    const warning = first.logLines.find((line) => line.includes('"level":"warn"')) ?? '';
    expect(warning).toContain('Generated a new master key');
    expect(warning).toContain('Back this file up');
    const keyText = (await Bun.file(join(dataDirectory, 'master.key')).text()).split('\n').find((line) => line !== '' && !line.startsWith('#')) ?? '';
    for (const leak of encodingsOf(Buffer.from(keyText, 'base64'))) expect(first.logLines.join('\n')).not.toContain(leak);

    const ciphertext = await first.backend.encrypt('sk-secret-value-123456', BINDING);
    const second = await startBackend({}, dataDirectory);
    expect(second.logLines.some((line) => line.includes('"level":"warn"'))).toBe(false);
    expect(await second.backend.decrypt(ciphertext, BINDING)).toBe('sk-secret-value-123456');
  });

  test('rotation: add v2, restart, new rows use v2 and old rows still decrypt', async () => {
    const dataDirectory = directories.make();
    const first = generateMasterKey();
    const before = await startBackend({ KEYWAY_MASTER_KEY: first }, dataDirectory);
    expect(before.backend.currentKeyVersion()).toBe(1);
    const old = await before.backend.encrypt('sk-old', BINDING);

    const after = await startBackend({ KEYWAY_MASTER_KEY: `v1:${first},v2:${generateMasterKey()}` }, dataDirectory);
    expect(after.backend.currentKeyVersion()).toBe(2);
    expect(after.logLines.join('\n')).toContain('current v2; decrypts v1, v2');
    const fresh = await after.backend.encrypt('sk-new', BINDING);
    expect(fresh.startsWith('kw1.local.v2.')).toBe(true);
    expect(await after.backend.decrypt(old, BINDING)).toBe('sk-old');
    expect(await after.backend.decrypt(fresh, BINDING)).toBe('sk-new');
  });

  test('failures reject the promise instead of throwing synchronously', async () => {
    const { backend } = await startBackend({ KEYWAY_MASTER_KEY: generateMasterKey() }, directories.make());
    const ciphertext = await backend.encrypt('sk-secret', BINDING);
    const pending = backend.decrypt(ciphertext, 'provider_key:pk_999:account:acc_1');
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toThrow('does not belong to this record or the master key is wrong');
  });

  test('a refused key stops setup with a message that does not echo it', async () => {
    const weak = Buffer.alloc(32, 7).toString('base64');
    const start = startBackend({ KEYWAY_MASTER_KEY: weak }, directories.make());
    await expect(start).rejects.toThrow('KEYWAY_MASTER_KEY is too weak');
    await start.catch((error: Error) => expect(error.message).not.toContain(weak));
  });
});
