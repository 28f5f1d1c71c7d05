// A gateway on a data directory that outlives it, so tests can stop and start it again with another
// keyring, the way an operator restarts Keyway with new master key settings.

import { Database } from 'bun:sqlite';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../core/logger.ts';
import type { PluginSource } from '../../core/registry.ts';
import { createRuntime, type Runtime } from '../../core/runtime.ts';
import { startServer, type RunningServer } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';
import { randomId } from '../../core/credentials/secrets.ts';
import { providerKeyRow } from '../helpers/provider-key-row.ts';
import type { CryptoBackend } from '../../core/spec/plugin.ts';
import { DEFAULT_ACCOUNT_ID, providerKeyBinding } from '../../core/credentials/snapshot.ts';
import { OPERATOR_KEY } from '../helpers/gateway.ts';

export { OPERATOR_KEY };

export interface Restartable {
  url: string;
  runtime: Runtime;
  server: RunningServer;
  output: string[];
  defaultAdminKey: string;
  stop(): Promise<void>;
}

export function makeDataDirectory(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'keyway-master-key-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

function environmentFor(dataDirectory: string, env: Record<string, string>): Record<string, string | undefined> {
  return {
    KEYWAY_HOST: '127.0.0.1',
    KEYWAY_PORT: '0',
    KEYWAY_DATA_DIR: dataDirectory,
    KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
    KEYWAY_ADMIN_KEY: OPERATOR_KEY,
    KEYWAY_USAGE_FLUSH_MS: '50',
    ...env,
  };
}

/** Starts on `dataDirectory`; `output` collects every log line (shared across restarts when passed in). */
export async function startAt(
  dataDirectory: string,
  env: Record<string, string>,
  options: { output?: string[]; extraPlugins?: PluginSource[]; fetch?: typeof fetch } = {},
): Promise<Restartable> {
  const output = options.output ?? [];
  const logger = createLogger('debug', { write: (line: string) => void output.push(line) } as never);
  const runtime = await createRuntime({
    builtinPlugins: [...builtinPlugins(), ...(options.extraPlugins ?? [])],
    environment: environmentFor(dataDirectory, env),
    logger,
    fetch: options.fetch,
    announce: (text) => void output.push(text),
    probes: false,
  });
  const server = startServer(runtime);
  const defaultAdminKey = /Admin key of the 'default' account:\s+(\S+)/.exec(output.join('\n'))?.[1] ?? '';
  return { url: server.url, runtime, server, output, defaultAdminKey, stop: () => server.stop() };
}

/** The message a refused start gave; fails when the start succeeded. */
export async function refusedStart(
  dataDirectory: string,
  env: Record<string, string>,
  output: string[] = [],
  extraPlugins: PluginSource[] = [],
): Promise<string> {
  let gateway: Restartable | undefined;
  try {
    gateway = await startAt(dataDirectory, env, { output, extraPlugins });
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  await gateway.stop();
  throw new Error('expected the start to be refused, but it succeeded');
}

export interface ProviderKeyRow {
  id: string;
  status: string;
  key_version: number;
  crypto_backend: string;
  ciphertext: string;
  deleted_at: string | null;
}

/** Reads the provider_keys table straight from the file, as an auditor would. */
export function providerKeyRows(dataDirectory: string): ProviderKeyRow[] {
  const database = new Database(join(dataDirectory, 'keyway.db'), { readonly: true });
  try {
    return database.query('SELECT id, status, key_version, crypto_backend, ciphertext, deleted_at FROM provider_keys ORDER BY id').all() as ProviderKeyRow[];
  } finally {
    database.close();
  }
}

/** Every row of every table, as text: what "nothing was written" compares (SQLite's shared-memory index changes on any open). */
export function databaseDump(dataDirectory: string): string {
  const database = new Database(join(dataDirectory, 'keyway.db'), { readonly: true });
  try {
    // A refused start's process may still be letting go of the file on a busy machine: wait, as a reader would.
    database.exec('PRAGMA busy_timeout = 5000');
    const tables = database.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
    return tables.map(({ name }) => `${name}: ${JSON.stringify(database.query(`SELECT * FROM "${name}"`).all())}`).join('\n');
  } finally {
    database.close();
  }
}

/** Every byte of the database files (main, WAL, shared memory), for canary scans. */
export function databaseBytes(dataDirectory: string): string {
  return readdirSync(dataDirectory)
    .filter((name) => name.startsWith('keyway.db'))
    .map((name) => fileText(join(dataDirectory, name)))
    .join('\n');
}

/** Latin-1, byte for byte; empty for a file gone since the listing (SQLite removes the WAL as its last connection closes). */
function fileText(path: string): string {
  try {
    return readFileSync(path).toString('latin1');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return '';
    throw error;
  }
}

/** The canary provider keys: distinctive, accepted by the simulator. */
export function canaryKeys(count: number, tag = 'MK'): string[] {
  return Array.from({ length: count }, (_, index) => `sk-proj-CANARY${tag}x${String(index).padStart(5, '0')}xDoNotLeak0123456789abcdef`);
}

export const chat = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] };

/** An account's provider key row as the store keeps it, sealed by the active backend. */
async function sealedAccountKey(backend: CryptoBackend, id: string, accountId: string, provider: string, apiKey: string) {
  const ciphertext = await backend.encrypt(apiKey, providerKeyBinding(id, 'account', accountId, provider));
  return providerKeyRow({
    id,
    owner: 'account',
    accountId,
    provider,
    apiKey,
    ciphertext,
    keyVersion: backend.currentKeyVersion(),
    cryptoBackend: backend.name,
  });
}

/**
 * Stores provider keys straight through the runtime's store and crypto backend (as POST
 * /v1/providers/keys does, without its 100-key limit per call and its model checks), for volume.
 */
export async function seedProviderKeys(runtime: Runtime, apiKeys: readonly string[], provider = 'openai', accountId = DEFAULT_ACCOUNT_ID): Promise<string[]> {
  const backend = runtime.plugins.cryptoBackends.get(runtime.cryptoBackendName);
  if (backend === undefined) throw new Error('no active crypto backend');
  const ids: string[] = [];
  for (let start = 0; start < apiKeys.length; start += 500) {
    const rows = await Promise.all(
      apiKeys.slice(start, start + 500).map(async (apiKey) => {
        const id = randomId('pk');
        ids.push(id);
        return sealedAccountKey(backend, id, accountId, provider, apiKey);
      }),
    );
    await runtime.store.insertProviderKeys(rows);
  }
  await runtime.snapshots.refresh();
  return ids;
}

/** Many tenants: `keys` provider keys spread over accounts of `perAccount` keys, the `default` account first. */
export async function seedTenants(runtime: Runtime, keys: number, perAccount: number, apiKey: string): Promise<void> {
  const backend = runtime.plugins.cryptoBackends.get(runtime.cryptoBackendName);
  if (backend === undefined) throw new Error('no active crypto backend');
  const rows = [];
  for (let index = 0; index < keys; index++) {
    const tenant = Math.floor(index / perAccount);
    const accountId = tenant === 0 ? DEFAULT_ACCOUNT_ID : `acct_bench_${String(tenant).padStart(5, '0')}`;
    if (tenant > 0 && index % perAccount === 0) await runtime.store.insertAccount(accountId, accountId);
    rows.push(await sealedAccountKey(backend, randomId('pk'), accountId, 'openai', apiKey));
  }
  for (let start = 0; start < rows.length; start += 500) await runtime.store.insertProviderKeys(rows.slice(start, start + 500));
  await runtime.snapshots.refresh();
}
