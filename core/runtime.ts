// Assembles a running gateway from configuration and plugins. The composition root
// (plugins/main.ts) decides which plugins; this file knows none of them by name.

import { defaultCatalog, type ModelCatalog } from './catalog/catalog.ts';
import { loadConfig, type GatewayConfig } from './config.ts';
import { ConfigStore, DEFAULT_ACCOUNT_ID } from './credentials/snapshot.ts';
import { KeyVault } from './credentials/key-vault.ts';
import { createLogger, type Logger } from './logger.ts';
import { ModelsCache } from './routing/reported-models.ts';
import { Gateway } from './routing/router.ts';
import { importPluginModules, loadPlugins, type PluginSet, type PluginSource } from './registry.ts';
import { generateGatewayKey, hashGatewayKey, maskKey } from './credentials/secrets.ts';
import { migrate, openStorage, type Storage } from '../plugins/store-sqlite/database.ts';
import { Repository } from '../plugins/store-sqlite/repository.ts';
import { UsageQueue } from './accounting/usage-queue.ts';
import type { InboundFormat } from './wire/openai-dialect.ts';
import type { Elysia } from 'elysia';
import { systemClock, type Clock } from './clock.ts';
import type { HealthMonitor } from './routing/health/monitor.ts';
import { createHealthMonitor, startProbes } from './routing/health/probes.ts';
import { shippedModelClasses, type ModelClassOverrides, type ModelClassTable } from './routing/model-classes.ts';

export interface Runtime {
  config: GatewayConfig;
  logger: Logger;
  storage: Storage;
  repository: Repository;
  store: ConfigStore;
  vault: KeyVault;
  models: ModelsCache;
  usage: UsageQueue;
  plugins: PluginSet;
  catalog: ModelCatalog;
  gateway: Gateway;
  health: HealthMonitor;
  clock: Clock;
  /** The crypto backend new provider keys are sealed with. */
  cryptoBackendName: string;
  /** Stops background work (probes); storage and usage are closed by the server. */
  stopBackground(): void;
}

/** Extra HTTP routes a composition root adds (the Anthropic Messages API, for instance). */
export type RouteExtension = (app: Elysia, runtime: Runtime) => void;

export interface RuntimeOptions {
  builtinPlugins: PluginSource[];
  environment?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  logger?: Logger;
  /** Where first-start secrets are printed (once). */
  announce?: (text: string) => void;
  clock?: Clock;
  /** Run active health probes in the background (tests drive them by hand). */
  probes?: boolean;
}

export interface FirstStartSecrets {
  operatorKey?: string;
  defaultAdminKey?: string;
}

export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const config = loadConfig(options.environment ?? process.env);
  const logger = options.logger ?? createLogger(config.logLevel);
  const external = await importPluginModules(config.pluginPaths);
  const plugins = await loadPlugins([...options.builtinPlugins, ...external], {
    logger,
    fetch: options.fetch ?? fetch,
    env: config.env,
    dataDirectory: config.dataDirectory,
    config: config.pluginConfig,
  });
  const cryptoBackendName = [...plugins.cryptoBackends.keys()][0];
  if (cryptoBackendName === undefined) throw new Error('No crypto-backend plugin is loaded; provider keys cannot be stored.');
  logger.info({ plugins: plugins.plugins.map((plugin) => `${plugin.name}@${plugin.version}`) }, `loaded ${plugins.plugins.length} plugins`);

  const storage = await openStorage(config.databaseUrl);
  await migrate(storage, logger);
  const repository = new Repository(storage.db, storage);
  const secrets = await bootstrap(repository, config);
  const store = new ConfigStore(repository, config.adminKey === undefined ? undefined : hashGatewayKey(config.adminKey));
  await store.refresh();
  announceSecrets(secrets, options.announce ?? ((text) => process.stdout.write(text)));

  const vault = new KeyVault(store, plugins.cryptoBackends);
  const models = new ModelsCache(plugins.providers, vault, store, logger, config.modelsCacheTtlMs);
  const usage = new UsageQueue(repository, logger, { flushIntervalMs: config.usageFlushIntervalMs, batchSize: config.usageBatchSize });
  const catalog = defaultCatalog();
  const clock = options.clock ?? systemClock;
  const health = createHealthMonitor(store, repository, logger, clock);
  const gateway = new Gateway({ plugins, store, vault, models, catalog, usage, logger, config, health, modelClasses: operatorModelClasses(store) });
  const stopProbes = options.probes === false ? () => undefined : startProbes(store, models, health);
  return { config, logger, storage, repository, store, vault, models, usage, plugins, catalog, gateway, health, clock, cryptoBackendName, stopBackground: stopProbes };
}

/** The shipped table with the operator's overrides, rebuilt only when the overrides change. */
function operatorModelClasses(store: ConfigStore): () => ModelClassTable {
  let source: unknown;
  let table = shippedModelClasses();
  return () => {
    const overrides = store.current.platformSettings.model_classes;
    if (overrides !== source) {
      source = overrides;
      table = shippedModelClasses().withOverrides(overrides as ModelClassOverrides | undefined);
    }
    return table;
  };
}

/** First start: the `default` account, its admin key, and an operator key unless one is configured. */
async function bootstrap(repository: Repository, config: GatewayConfig): Promise<FirstStartSecrets> {
  const secrets: FirstStartSecrets = {};
  if ((await repository.getAccount(DEFAULT_ACCOUNT_ID)) === undefined) {
    await repository.insertAccount(DEFAULT_ACCOUNT_ID, 'default');
    const key = generateGatewayKey('ak');
    await repository.insertGatewayKey({ id: 'key_default_admin', accountId: DEFAULT_ACCOUNT_ID, role: 'admin', name: 'default admin', keyHash: hashGatewayKey(key), maskedKey: maskKey(key) });
    secrets.defaultAdminKey = key;
  }
  if (config.adminKey === undefined && (await repository.countGatewayKeys('operator')) === 0) {
    const key = generateGatewayKey('op');
    await repository.insertGatewayKey({ id: 'key_operator_generated', accountId: DEFAULT_ACCOUNT_ID, role: 'operator', name: 'operator', keyHash: hashGatewayKey(key), maskedKey: maskKey(key) });
    secrets.operatorKey = key;
  }
  return secrets;
}

/** Secrets go to the terminal once, never through the logger (which would redact them anyway). */
function announceSecrets(secrets: FirstStartSecrets, announce: (text: string) => void): void {
  const lines: string[] = [];
  if (secrets.operatorKey) lines.push(`  Operator key (KEYWAY_ADMIN_KEY):      ${secrets.operatorKey}`);
  if (secrets.defaultAdminKey) lines.push(`  Admin key of the 'default' account:   ${secrets.defaultAdminKey}`);
  if (lines.length === 0) return;
  announce(['', '================ Keyway first start ================', ...lines, '  These keys are shown only now: store them safely.', '====================================================', ''].join('\n') + '\n');
}

export type { InboundFormat };
