// An operator who moves to PostgreSQL sets KEYWAY_DATABASE_URL and starts again on the same data
// directory. Before, that start quietly made a new installation on the empty database: a second
// first-start banner, the old admin and member keys refused, no teams, and nothing said about the
// embedded database sitting beside it with all of that data (QA15 cluster #5). Now a first start on an
// empty store, beside an embedded database that holds an installation, is refused with what to do:
// copy it over (the copy-store command), or say KEYWAY_START_FRESH=1 to begin anew on purpose.

import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, EMBEDDED_DATABASE_FILE, type GatewayConfig } from './config.ts';
import type { Logger } from './logger.ts';
import type { PluginSet } from './registry.ts';
import type { Store } from './spec/store.ts';

/** What the embedded database holds, for the operator to recognise it. */
export interface InstallationContents {
  accounts: number;
  gatewayKeys: number;
  providerKeys: number;
  usageRows: number;
}

const IN_MEMORY = /^(:memory:|file::memory:)/;

/** The file a `file:` URL names, resolved; undefined for any other URL. */
function fileOf(url: string): string | undefined {
  if (!url.startsWith('file:') || IN_MEMORY.test(url)) return undefined;
  return resolve(url.slice('file:'.length).split('?')[0] as string);
}

/**
 * Whether the store holds no installation yet: this start would make one. A store never migrated
 * has no tables to read; it counts as empty when it still answers a ping (so an unreachable store
 * is not mistaken for an empty one).
 */
async function storeIsEmpty(store: Store): Promise<boolean> {
  try {
    return (await store.listAccounts()).length === 0;
  } catch (error) {
    await store.ping().catch(() => {
      throw error;
    });
    return true;
  }
}

/** Counts what the embedded database holds, read-only; undefined when it holds no installation. */
export async function embeddedInstallation(
  plugins: Pick<PluginSet, 'storeDrivers'>,
  path: string,
  config: GatewayConfig,
): Promise<InstallationContents | undefined> {
  const url = `file:${path}?mode=ro`;
  const driver = plugins.storeDrivers.find((entry) => entry.value.accepts(url));
  if (driver === undefined) return undefined;
  const embedded = await driver.value.open(url, { dataDirectory: config.dataDirectory, env: config.env });
  try {
    const accounts = await embedded.listAccounts().catch(() => []);
    if (accounts.length === 0) return undefined;
    const count = async (read: () => Promise<number>): Promise<number> => read().catch(() => 0);
    return {
      accounts: accounts.length,
      gatewayKeys: await count(async () => (await embedded.listActiveGatewayKeys()).length),
      providerKeys: await count(async () => (await embedded.listActiveProviderKeys()).length),
      usageRows: await count(async () => Number((await embedded.query('SELECT COUNT(*) AS count FROM usage_records'))[0]?.count ?? 0)),
    };
  } finally {
    embedded.close();
  }
}

function plural(count: number, word: string): string {
  return `${count.toLocaleString('en-US')} ${word}${count === 1 ? '' : 's'}`;
}

export function describeContents(contents: InstallationContents): string {
  return [
    plural(contents.accounts, 'account'),
    plural(contents.gatewayKeys, 'active gateway key'),
    plural(contents.providerKeys, 'provider key'),
    plural(contents.usageRows, 'usage row'),
  ].join(', ');
}

/** ` (postgres:)`: the scheme only, since what follows may hold a password. */
function schemeOf(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  return scheme === undefined ? '' : ` (${scheme}:)`;
}

function refusal(config: GatewayConfig, store: Store, path: string, contents: InstallationContents): string {
  const found =
    `KEYWAY_DATABASE_URL names an empty database${schemeOf(config.databaseUrl)}, but the data directory ${config.dataDirectory} holds ` +
    `${EMBEDDED_DATABASE_FILE}, the embedded database of an earlier installation (${describeContents(contents)}). ` +
    'Starting would begin a new, empty installation instead: its admin and member keys, teams and usage would not be there. ';
  const move =
    store.dialect === 'postgres'
      ? 'To move that installation here, stop every Keyway that uses it, then run, with this same environment (KEYWAY_DATABASE_URL names the target), ' +
        `\`bun plugins/main.ts copy-store --from sqlite:${path}\` (the binary: \`keyway copy-store --from sqlite:${path}\`) and start again; ` +
        'keep the same master key (docs/deployment.md, "Moving from SQLite to PostgreSQL"). '
      : `Keyway copies an installation into PostgreSQL only (copy-store); to keep using it, set KEYWAY_DATABASE_URL=file:${path}. `;
  return `${found}${move}To start a new installation anyway, set KEYWAY_START_FRESH=1.`;
}

/**
 * Refuses a first start on an empty store when the data directory's embedded database holds an
 * installation and is not the configured store, unless KEYWAY_START_FRESH is set. Runs before the
 * store is migrated or written, so a refused start leaves the new database as it found it. Cheap on
 * every other start: a file check, and one read of the store only when that file exists.
 */
export async function refuseStartBesideEarlierInstallation(
  store: Store,
  plugins: Pick<PluginSet, 'storeDrivers'>,
  config: GatewayConfig,
  logger: Logger,
): Promise<void> {
  if (IN_MEMORY.test(config.databaseUrl)) return;
  const path = join(config.dataDirectory, EMBEDDED_DATABASE_FILE);
  if (fileOf(config.databaseUrl) === path || !existsSync(path) || statSync(path).size === 0) return;
  if (!(await storeIsEmpty(store))) return;
  const contents = await embeddedInstallation(plugins, path, config);
  if (contents === undefined) return;
  if (!config.startFresh) throw new ConfigError(refusal(config, store, path, contents));
  logger.warn(
    { embeddedDatabase: path, contents },
    `KEYWAY_START_FRESH is set: starting a new installation, although ${path} holds an earlier one (${describeContents(contents)}); its data is not moved`,
  );
}
