// Opens the store KEYWAY_DATABASE_URL names and prepares it for the plugins: migrations between two
// master key checks, the usage folds or SQL roll-ups, and a refusal for any plugin without tables in
// the store's dialect. A refused start writes nothing and leaves no file held.

import { ConfigError, type GatewayConfig } from './config.ts';
import { enforceKeyChecks, MasterKeyCheckError, verifyKeyChecksBeforeMigrations } from './credentials/key-check.ts';
import { checkKeyVersionsInUse, MissingKeyVersionError } from './credentials/missing-key-versions.ts';
import type { Logger } from './logger.ts';
import type { PluginSet } from './registry.ts';
import type { Store } from './spec/plugin.ts';

/** The store plugin that accepts KEYWAY_DATABASE_URL; the first to accept wins. */
export async function openStore(plugins: PluginSet, config: GatewayConfig): Promise<Store> {
  const driver = plugins.storeDrivers.find((entry) => entry.value.accepts(config.databaseUrl));
  if (driver === undefined) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(config.databaseUrl)?.[1] ?? 'no scheme';
    const loaded = plugins.storeDrivers.map((entry) => entry.plugin).join(', ') || 'none';
    throw new ConfigError(`KEYWAY_DATABASE_URL uses ${scheme}:, which no loaded store plugin accepts (store plugins: ${loaded}).`);
  }
  return driver.value.open(config.databaseUrl, { dataDirectory: config.dataDirectory, env: config.env });
}

/**
 * Migrations between two master key checks: the first, before anything is written, refuses a wrong
 * key on a database that already has checks; the second covers a new database and seals the checks.
 * A refusal closes the store, so nothing holds the file.
 */
export async function prepareStore(store: Store, plugins: PluginSet, logger: Logger, env: Record<string, string | undefined>): Promise<void> {
  // The provider keys are checked from their rows; every other sealed value through its holder.
  const holders = plugins.ciphertextHolders.map(({ value }) => value);
  try {
    await verifyKeyChecksBeforeMigrations(store, plugins.cryptoBackends);
    await checkKeyVersionsInUse(store, plugins.cryptoBackends, holders, env, logger, { write: false });
    refuseMissingDialect(store, plugins);
    const migrations = await store.migrate(plugins.migrations.filter((entry) => entry.dialect === store.dialect));
    const folded = setUsageFolds(store, plugins);
    // A plugin's SQL roll-ups are for stores that do not take its folds.
    const rollups = plugins.usageRollups.filter((entry) => entry.dialect === store.dialect && !folded.has(entry.plugin));
    if (rollups.length > 0) {
      if (store.setUsageRollups === undefined) {
        throw new ConfigError(`The ${store.driver} store cannot keep usage roll-ups, which ${rollups.map((entry) => entry.plugin).join(', ')} need.`);
      }
      store.setUsageRollups(rollups);
    }
    logger.info({ migrations }, migrations.applied.length > 0 ? `applied ${migrations.applied.length} migration(s)` : 'database schema is up to date');
    await checkKeyVersionsInUse(store, plugins.cryptoBackends, holders, env, logger, { write: true });
    await enforceKeyChecks(store, plugins.cryptoBackends, logger);
  } catch (error) {
    store.close();
    if (error instanceof MasterKeyCheckError || error instanceof MissingKeyVersionError) discardGeneratedKeys(plugins);
    throw error;
  }
}

/**
 * A start refused for the wrong or a missing master key writes nothing (the key check is the last
 * write, and only on success): a key generated for it would otherwise stay behind and be presented
 * as this database's key at the next start.
 */
export function discardGeneratedKeys(plugins: PluginSet): void {
  for (const backend of plugins.cryptoBackends.values()) backend.discardGeneratedKey?.();
}

/**
 * Hands the store the plugins' folds when it takes them; answers the plugins whose roll-ups the folds
 * keep. A store that does not take folds needs SQL roll-ups in its dialect from each plugin that has folds.
 */
function setUsageFolds(store: Store, plugins: PluginSet): Set<string> {
  if (plugins.usageFolds.length === 0) return new Set();
  if (store.setUsageFolds !== undefined) {
    store.setUsageFolds(plugins.usageFolds);
    return new Set(plugins.usageFolds.map((fold) => fold.plugin));
  }
  const withSql = new Set(plugins.usageRollups.filter((entry) => entry.dialect === store.dialect).map((entry) => entry.plugin));
  const unkept = plugins.usageFolds.filter((fold) => !withSql.has(fold.plugin)).map((fold) => fold.plugin);
  if (unkept.length > 0) throw new ConfigError(`The ${store.driver} store cannot keep usage folds, which ${unkept.join(', ')} need.`);
  return new Set();
}

/** A plugin with tables in other dialects only would run without them here: the start is refused instead. */
function refuseMissingDialect(store: Store, plugins: PluginSet): void {
  const entries = [...plugins.migrations, ...plugins.usageRollups];
  const covered = new Set(entries.filter((entry) => entry.dialect === store.dialect).map((entry) => entry.plugin));
  const missing = [...new Set(entries.filter((entry) => !covered.has(entry.plugin)).map((entry) => entry.plugin))];
  if (missing.length > 0) {
    throw new ConfigError(
      `The ${store.dialect} store (KEYWAY_DATABASE_URL) has no ${store.dialect} migrations from ${missing.join(', ')}, which ship SQL only for ${[
        ...new Set(entries.filter((entry) => missing.includes(entry.plugin)).map((entry) => entry.dialect)),
      ].join(', ')}.`,
    );
  }
}
