// Assembles a running gateway from configuration and plugins. The composition root
// (plugins/main.ts) decides which plugins; this file knows none of them by name.

import { Accountant } from './accounting/account.ts';
import { openUsageQueue, replayedLeaseSettler } from './accounting/open-usage.ts';
import type { UsageQueue } from './accounting/usage-queue.ts';
import { aliasesOf, catalogFor, type ModelCatalog } from './catalog/catalog.ts';
import { createPricingService } from './catalog/pricing-service.ts';
import { costOf } from './catalog/pricing.ts';
import type { TextTokenCount } from './spec/provider.ts';
import { openPriceBook } from './catalog/open-prices.ts';
import type { PriceBook } from './catalog/price-book.ts';
import { systemClock, type Clock } from './clock.ts';
import { loadConfig, type GatewayConfig } from './config.ts';
import { closestNames } from './closest-names.ts';
import { refuseStartBesideEarlierInstallation } from './earlier-installation.ts';
import { checkVariableNames } from './variable-names.ts';
import { workerIndex } from './process/workers.ts';
import { prepareDataDirectory } from './process/data-directory.ts';
import { createPooledFetch } from './wire/http1/client.ts';
import { admit, authenticateManagement, recognise, recogniseManagement, requireRole } from './credentials/authenticate.ts';
import { watchConfiguration } from './credentials/config-watch.ts';
import { KeyVault } from './credentials/key-vault.ts';
import { warnReferencesOutOfScope } from './credentials/reference-scope.ts';
import { createProviderKeyService } from './credentials/provider-key-service.ts';
import { rememberSecret } from './credentials/secret-values.ts';
import { createSecretSealer } from './credentials/secret-sealer.ts';
import { hashGatewayKey } from './credentials/secrets.ts';
import { ConfigSnapshots } from './credentials/snapshot.ts';
import { DrainDeadline } from './lifecycle/drain.ts';
import { LifecycleRunner } from './lifecycle/runner.ts';
import { UpstreamSlots } from './lifecycle/upstream-slots.ts';
import { createLogger, redactedExcerpt, type Logger } from './logger.ts';
import { importPluginModules, loadPlugins, type PluginSet, type PluginSource } from './registry.ts';
import type { HealthMonitor } from './routing/health/monitor.ts';
import { createHealthMonitor, startProbes } from './routing/health/probes.ts';
import { answerHealthFigures } from './routing/health/workers.ts';
import { shippedModelClasses, type ModelClassOverrides, type ModelClassTable } from './routing/model-classes.ts';
import { learnListings, ReportedModels } from './routing/reported-models.ts';
import { Router } from './routing/router.ts';
import { createServices } from './services.ts';
import { activeCryptoBackend, openCluster, openCounters, refuseUnacceptedRedisUrl } from './plugin-drivers.ts';
import { discardGeneratedKeys, openStore, prepareStore } from './open-store.ts';
import { announceSecrets, bootstrap } from './first-start.ts';
import { withStorageAvailability } from './storage-availability.ts';
import { CLUSTER_TOPICS, type ClusterBus, type WorkerSiblings } from './spec/cluster.ts';
import type { AlertDelivery, AlertEvent, Counters, JobDefinition, PricingService, Services, Store } from './spec/plugin.ts';
import { openAIDialect } from './wire/openai-dialect.ts';
import { createOutboundService, withoutAddresses } from './wire/outbound.ts';
import { UpstreamPolicy } from './wire/upstream-policy.ts';

export interface Runtime {
  config: GatewayConfig;
  logger: Logger;
  /** The durable store (a store plugin's, chosen by KEYWAY_DATABASE_URL). */
  store: Store;
  /** The in-memory configuration snapshot the request path reads. */
  snapshots: ConfigSnapshots;
  counters: Counters;
  /** The other members of the cluster: messages and leases (core/spec/cluster.ts). */
  cluster: ClusterBus;
  vault: KeyVault;
  models: ReportedModels;
  usage: UsageQueue;
  /** The shutdown drain's deadline for in-flight streams (core/lifecycle/drain.ts). */
  drain: DrainDeadline;
  plugins: PluginSet;
  catalog: ModelCatalog;
  /** The layers of the price table (embedded, KEYWAY_PRICES_FILE, operator overrides) behind `catalog`. */
  prices: PriceBook;
  router: Router;
  accountant: Accountant;
  lifecycle: LifecycleRunner;
  health: HealthMonitor;
  /** Fair shares of the upstream connections per account and per upstream, and their queue (GET /v1/platform/connections). */
  slots: UpstreamSlots;
  clock: Clock;
  services: Services;
  /** The crypto backend new provider keys are sealed with. */
  cryptoBackendName: string;
  /** Which upstream addresses may be called (core/wire/upstream-policy.ts); the server tells it the port it listens on. */
  upstream: UpstreamPolicy;
  /** Starts background work (probes, plugin jobs); the server calls it once it listens. */
  startBackground(): void;
  /** Stops background work; storage and usage are closed by the server. */
  stopBackground(): void;
  /** Runs each plugin job's `drain` once, at shutdown, before the store closes, with the drain's deadline; errors are logged. */
  drainJobs(deadline: number): Promise<void>;
  /** Closes the upstream client's idle connections (KEYWAY_UPSTREAM_CLIENT=pool), once the server has drained. */
  closeUpstreamClient(): void;
  /** Prints the first start's new keys, once: the server calls it when it listens, or when it could not (`startFailed`). */
  announceFirstStart(startFailed?: boolean): void;
}

export interface RuntimeOptions {
  builtinPlugins: PluginSource[];
  environment?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** The resolver the upstream address rules check host names with (default: the system's, every address); tests inject their own, as they do fetch. */
  resolve?: (host: string) => Promise<string[]>;
  logger?: Logger;
  /** Where first-start secrets are printed (once, when the server listens). */
  announce?: (text: string) => void;
  clock?: Clock;
  /** Run active health probes in the background (tests drive them by hand). */
  probes?: boolean;
  /**
   * The cluster this process belongs to; by default a cluster plugin's for KEYWAY_REDIS_URL, or this
   * process alone. Tests pass members of one LocalClusterHub to run several gateways as instances.
   */
  cluster?: ClusterBus;
  /** The counters this process uses; by default a counters plugin's for KEYWAY_REDIS_URL, or in memory. Workers pass the primary's. */
  counters?: Counters;
  /** The other workers of this instance, when this process is one of several (KEYWAY_WORKERS). */
  siblings?: WorkerSiblings;
}

export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const environment = options.environment ?? process.env;
  const config = loadConfig(environment);
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  // Before any plugin writes there (a generated master key, the database): private whatever the key's source.
  prepareDataDirectory(config.dataDirectory, logger, (workerIndex(environment) ?? 1) === 1);
  const upstreamClient = createUpstreamClient(options.fetch, config.upstreamClient);
  // Before the services: plugins are handed its signals (services.shutdown) in `setup`.
  const drain = new DrainDeadline();
  const { services, bind, bindSecrets } = createServices({
    logger,
    fetch: upstreamClient.fetch,
    env: config.env,
    dataDirectory: config.dataDirectory,
    clock,
    maxBodyBytes: config.maxBodyBytes,
    maxJsonDepth: config.maxJsonDepth,
    bodyTimeoutMs: config.bodyTimeoutMs,
    siblings: options.siblings,
    shutdown: drain.signals,
  });
  const external = await importPluginModules(config.pluginPaths);
  const plugins = await loadPlugins([...options.builtinPlugins, ...external], {
    logger,
    fetch: upstreamClient.fetch,
    env: config.env,
    dataDirectory: config.dataDirectory,
    config: config.pluginConfig,
    services,
  });
  const cryptoBackendName = activeCryptoBackend(plugins, config.env);
  const secretSealer = createSecretSealer(plugins.cryptoBackends, cryptoBackendName);
  bindSecrets(secretSealer);
  // Before the store opens: a refusal then leaves nothing open behind it.
  refuseUnacceptedRedisUrl(plugins, config.redisUrl);
  logger.info({ plugins: plugins.plugins.map((plugin) => `${plugin.name}@${plugin.version}`) }, `loaded ${plugins.plugins.length} plugins`);
  warnUnknownPluginSections(config.pluginConfig, plugins, logger);
  // Before the store opens, like the check above: a misspelt variable in the file stops the start.
  checkVariableNames({ configFile: config.configFile, environment, plugins: plugins.plugins, logger }, (workerIndex(environment) ?? 1) === 1);

  const opened = await openStore(plugins, config);
  await refuseStartBesideEarlierInstallation(opened, plugins, config, logger).catch((error: unknown) => {
    opened.close();
    discardGeneratedKeys(plugins);
    throw error;
  });
  await prepareStore(opened, plugins, logger, config.env);
  // From here on, a database that cannot answer is a 503 storage_unavailable, not a 500.
  const store = withStorageAvailability(opened);
  const counters = options.counters ?? (await openCounters(plugins, config, clock));
  const { bus: cluster, shared: sharedCluster } =
    options.cluster === undefined ? await openCluster(plugins, config, clock) : { bus: options.cluster, shared: true };
  // The operator key is in this process's memory; scrub it from any text that might echo it.
  rememberSecret(config.adminKey);
  const secrets = await bootstrap(store, config, logger);
  const snapshots = new ConfigSnapshots(store, config.adminKey === undefined ? undefined : hashGatewayKey(config.adminKey), plugins.snapshotSections);
  await snapshots.load();
  if ((workerIndex(environment) ?? 1) === 1) warnReferencesOutOfScope(snapshots.current, plugins.keySources, logger);
  snapshots.shareThrough(cluster, logger);
  let unannounced: typeof secrets | undefined = secrets;
  const announceFirstStart = (startFailed = false): void => {
    if (unannounced === undefined) return;
    announceSecrets(unannounced, options.announce ?? ((text) => process.stdout.write(text)), startFailed);
    unannounced = undefined;
  };

  const vault = new KeyVault(snapshots, plugins.cryptoBackends, undefined, {
    keySources: plugins.keySources,
    observers: plugins.keyDecryptionObservers,
    now: () => clock.now(),
    onObserverError: (plugin, error) =>
      logger.error({ plugin, error: error instanceof Error ? error.message : String(error) }, 'key decryption observer failed'),
    // A rolling restart onto a new master key version: expected, and over once this instance restarts.
    onMissingKeyVersion: (record, detail) => logger.warn({ keyId: record.id, provider: record.provider }, detail),
  });
  const upstream = new UpstreamPolicy({ allow: config.upstreamAllow, deny: config.upstreamDeny, resolve: options.resolve });
  const models = new ReportedModels(plugins.providers, vault, snapshots, logger, config.modelsCacheTtlMs, upstream);
  const catalog = catalogFor(plugins.providers);
  const prices = openPriceBook(aliasesOf(plugins.providers), catalog, config.pricesFile, snapshots, logger);
  // Replays the usage journal a crashed run left, before any request is served; once the prices are
  // loaded, as the requests it left in flight are booked at their estimate's list price.
  // A request left in flight by a crashed process is priced as a cut stream is: a provider that
  // searches on every request is billed its search (at its default depth: the journal keeps no body).
  const searchContextSizeOf = (provider: string, request: Readonly<Record<string, unknown>> | undefined): string | undefined =>
    plugins.providers.get(provider)?.searchContextSizeOf?.(request);
  const usage = await openUsageQueue(
    store,
    logger,
    config,
    (provider, model, used) => {
      const size = used.searchContextSize ?? searchContextSizeOf(provider, undefined);
      return costOf(catalog, provider, [model], size === undefined ? used : { ...used, searchContextSize: size });
    },
    replayedLeaseSettler(counters, logger),
  );
  cluster.subscribe(CLUSTER_TOPICS.pricesFile, () => reloadPriceFile(prices, logger));
  const health = createHealthMonitor(snapshots, store, logger, clock, cluster, (key) => vault.unusableHere(key));
  answerHealthFigures(options.siblings, health, snapshots);
  const router = new Router({
    providers: plugins.providers,
    strategies: plugins.strategies,
    snapshots,
    models,
    catalog,
    health,
    modelClasses: operatorModelClasses(snapshots, plugins.providers),
    modelFilters: plugins.modelFilters,
  });
  const pricing = createPricingService(
    catalog,
    (provider) => {
      const adapter = plugins.providers.get(provider);
      return adapter?.loadTokenizer === undefined
        ? undefined
        : (model) => (adapter.loadTokenizer as (model: string) => Promise<TextTokenCount | undefined>)(model);
    },
    (provider, model, error) =>
      logger.warn(
        { provider, model, error: error instanceof Error ? error.message : String(error) },
        'the provider tokenizer could not count: this request is judged on the byte bound',
      ),
    (provider) => plugins.providers.get(provider)?.cacheWrites,
  );
  // A served answer without a usable prompt count books its prompt as the provider's tokenizer counts it.
  const accountant = new Accountant({
    catalog,
    searchContextSizeOf,
    usage,
    logger,
    hooks: plugins.hooks,
    countPromptTokens: pricing.countPromptTokens,
    promptTokenBound: pricing.promptTokenBound,
    countedPromptTokens: pricing.countedPromptTokens,
  });
  const slots = new UpstreamSlots({
    perAccount: config.maxInflightPerAccount,
    perUpstream: config.maxInflightPerUpstream,
    queueTimeoutMs: config.upstreamQueueTimeoutMs,
    connections: config.upstreamConnections,
    env: config.env,
  });
  const lifecycle = new LifecycleRunner({
    authenticate: (headers) => recognise(snapshots, headers),
    admit: (principal, headers, clientAddress) => admit(principal, headers, plugins.managementGuards, clientAddress),
    snapshots,
    router,
    accountant,
    attempts: {
      providers: plugins.providers,
      vault,
      health,
      config,
      logger,
      upstream,
      slots,
      upstreamCalled: (context, candidate) => accountant.opened(context, candidate),
      drain,
    },
    hooks: plugins.hooks,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    maxJsonDepth: config.maxJsonDepth,
    bodyTimeoutMs: config.bodyTimeoutMs,
    drain,
  });
  bind({
    store,
    counters,
    cluster,
    pricing,
    usageQueue: usage,
    snapshot: {
      get current() {
        return snapshots.current;
      },
      section: (name) => snapshots.section(name),
      refresh: () => snapshots.refresh(),
    },
    inference: {
      run: (request, operation, clientAddress) => lifecycle.run(request, operation, clientAddress),
      dialect: (name) => (name === openAIDialect.name ? openAIDialect : plugins.dialects.get(name)),
    },
    outbound: createOutboundService(upstream),
    auth: {
      authenticate: (headers) => authenticateManagement(snapshots, headers, plugins.sessionCredentials),
      admit: (headers, clientAddress, role, teamKeys) =>
        admit(recogniseManagement(snapshots, headers, plugins.sessionCredentials), headers, plugins.managementGuards, clientAddress, role, teamKeys),
      requireRole,
      guardManagementCall: (principal, clientAddress) => {
        for (const { value: guard } of plugins.managementGuards) guard(principal, clientAddress);
      },
    },
    crypto: { name: cryptoBackendName, validatedModule: plugins.cryptoBackends.get(cryptoBackendName)?.validatedModule },
    alerts: {
      fire: (event) => fireAlert(plugins, logger, event),
      channelFor: (target) => plugins.alertChannels.find((candidate) => candidate.accepts(target))?.name,
    },
    secrets: secretSealer,
    keySources: { get: (name) => plugins.keySources.get(name), names: () => [...plugins.keySources.keys()] },
    providerKeys: createProviderKeyService({
      store,
      snapshots,
      vault,
      models,
      providers: plugins.providers,
      backend: plugins.cryptoBackends.get(cryptoBackendName) as NonNullable<ReturnType<typeof plugins.cryptoBackends.get>>,
      upstream,
    }),
    providerHealth: {
      report: (accountId) =>
        [...(snapshots.current.accountKeys.get(accountId) ?? new Map()).entries()].map(([provider, keys]) => health.report(provider, keys)),
      keyAvailable: (key) => health.isAvailable(key),
      onDisabled: (listener) =>
        health.onDisabled((event) => {
          try {
            listener(event);
          } catch (error) {
            logger.error({ provider: event.provider, error: error instanceof Error ? error.message : String(error) }, 'a provider-disabled listener failed');
          }
        }),
    },
  });
  const background = createBackground(plugins, logger, cluster, () => [
    options.probes === false ? () => undefined : startProbes(snapshots, models, health),
    options.probes === false ? () => undefined : learnListings(snapshots, models),
    sharedCluster ? watchConfiguration(snapshots, { reloadMs: config.configReloadMs, pollMs: config.configPollMs }) : () => undefined,
  ]);
  return {
    config,
    logger,
    store,
    snapshots,
    counters,
    cluster,
    vault,
    models,
    usage,
    drain,
    plugins,
    catalog,
    prices,
    router,
    accountant,
    lifecycle,
    health,
    slots,
    clock,
    services,
    cryptoBackendName,
    upstream,
    ...background,
    closeUpstreamClient: upstreamClient.close,
    announceFirstStart,
  };
}

/**
 * The fetch every upstream call goes through: a test's own, else KEYWAY_UPSTREAM_CLIENT's choice
 * (docs/configuration.md "Upstream client"). The pool hands what it does not do itself to fetch.
 */
function createUpstreamClient(given: typeof fetch | undefined, choice: GatewayConfig['upstreamClient']): { fetch: typeof fetch; close: () => void } {
  if (given !== undefined || choice === 'fetch') return { fetch: given ?? fetch, close: () => undefined };
  const pooled = createPooledFetch();
  return { fetch: pooled, close: () => pooled.close() };
}

/**
 * A `plugins.<name>` section of the KEYWAY_CONFIG file that no loaded plugin reads (a misspelt name,
 * or a plugin not in this start's KEYWAY_PLUGINS) is said at start, with the nearest loaded name. A
 * warning, not a refusal: one file may serve gateways that load different plugins.
 */
function warnUnknownPluginSections(sections: Record<string, unknown>, plugins: PluginSet, logger: Logger): void {
  const loaded = plugins.plugins.map((plugin) => plugin.name);
  for (const name of Object.keys(sections)) {
    if (loaded.includes(name)) continue;
    const [nearest] = closestNames(name, loaded, 1);
    logger.warn(
      { section: `plugins.${name.slice(0, 100)}`, ...(nearest === undefined ? {} : { nearest: `plugins.${nearest}` }) },
      'the KEYWAY_CONFIG file has settings for a plugin that is not loaded: they are not used',
    );
  }
}

/** Another member reloaded its price file: this one re-reads its own; a refused file leaves the table in use. */
function reloadPriceFile(prices: PriceBook, logger: Logger): void {
  if (prices.file.path === undefined) return;
  try {
    prices.reloadFile();
  } catch (error) {
    logger.error({ path: prices.file.path, error: (error as Error).message }, 'KEYWAY_PRICES_FILE refused on reload; the table in use stays');
  }
}

/** Sends an alert to each target through the first channel that accepts it; never throws. */
async function fireAlert(plugins: PluginSet, logger: Logger, event: AlertEvent): Promise<AlertDelivery[]> {
  return Promise.all(
    event.targets.map(async (target): Promise<AlertDelivery> => {
      const channel = plugins.alertChannels.find((candidate) => candidate.accepts(target));
      if (channel === undefined) return { target, channel: undefined, ok: false, error: 'no alert channel accepts this target' };
      try {
        await channel.send(event, target);
        return { target, channel: channel.name, ok: true };
      } catch (error) {
        // A channel's error can echo the event it failed to send, or the URL it fetched (a pinned one holds
        // the checked address): scrub both before logging or reporting.
        const message = withoutAddresses(redactedExcerpt(error instanceof Error ? error.message : String(error), 500));
        logger.warn({ alertId: event.alertId, channel: channel.name, error: message }, 'alert delivery failed');
        return { target, channel: channel.name, ok: false, error: message };
      }
    }),
  );
}

/** Probes, timers and plugin jobs: started once the server listens, each job never overlapping itself. */
function createBackground(
  plugins: PluginSet,
  logger: Logger,
  cluster: ClusterBus,
  startTimers: () => Array<() => void>,
): Pick<Runtime, 'startBackground' | 'stopBackground' | 'drainJobs'> {
  const stops: Array<() => void> = [];
  let started = false;
  return {
    startBackground() {
      if (started) return;
      started = true;
      stops.push(...startTimers());
      for (const { plugin, value: job } of plugins.jobs) {
        let running = false;
        const timer = setInterval(() => {
          if (running) return;
          running = true;
          Promise.resolve()
            .then(() => runOnce(cluster, `job:${plugin}:${job.name}`, job))
            .catch((error: unknown) =>
              logger.error({ plugin, job: job.name, error: error instanceof Error ? error.message : String(error) }, 'background job failed'),
            )
            .finally(() => {
              running = false;
            });
        }, job.intervalMs);
        timer.unref?.();
        stops.push(() => clearInterval(timer));
      }
    },
    stopBackground() {
      for (const stop of stops.splice(0)) stop();
    },
    async drainJobs(deadline) {
      for (const { plugin, value: job } of plugins.jobs) {
        try {
          await job.drain?.(deadline);
        } catch (error) {
          logger.error({ plugin, job: job.name, error: error instanceof Error ? error.message : String(error) }, 'background job drain failed');
        }
      }
    },
  };
}

/**
 * A cluster-scoped job runs where its lease is held; the lease outlives two intervals so a missed tick
 * does not hand it over, and a dead holder's lapses within that.
 */
async function runOnce(cluster: ClusterBus, leaseName: string, job: JobDefinition): Promise<void> {
  if (job.scope === 'cluster' && !(await cluster.acquireLease(leaseName, Math.max(2 * job.intervalMs, 5_000)))) return;
  await job.run();
}

/** The shipped table with the operator's overrides, rebuilt only when the overrides change. */
function operatorModelClasses(snapshots: ConfigSnapshots, providers: PluginSet['providers']): () => ModelClassTable {
  let source: unknown;
  let table = shippedModelClasses(providers);
  return () => {
    const overrides = snapshots.current.platformSettings.model_classes;
    if (overrides !== source) {
      source = overrides;
      table = shippedModelClasses(providers).withOverrides(overrides as ModelClassOverrides | undefined);
    }
    return table;
  };
}
