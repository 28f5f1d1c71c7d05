import { Value } from '@sinclair/typebox/value';
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from './logger.ts';
import { checkedKeySource } from './credentials/fetched-keys.ts';
import { type UsageFold, validateUsageFoldTables } from './spec/usage-fold.ts';
import type { KeyDecryptionObserver, KeySource } from './spec/key-source.ts';
import { HOOK_STAGES } from './spec/lifecycle.ts';
import { SettingError } from './spec/settings.ts';
import { unknownPluginSetting } from './plugin-settings.ts';
import {
  PLUGIN_API_VERSION,
  PLUGIN_KINDS,
  type AdminActionObserver,
  type SessionArrival,
  type ManagementGuard,
  type ModelFilter,
  type KeyAgePolicy,
  type SessionCredentialResolver,
  type AlertChannel,
  type CiphertextHolder,
  type ClusterDriver,
  type CountersDriver,
  type CryptoBackend,
  type Dialect,
  type HookStage,
  type Hooks,
  type JobDefinition,
  type Migration,
  type PluginContributions,
  type PluginDefinition,
  type PluginKind,
  type ProviderAdapter,
  type RouteDefinition,
  type RoutingStrategy,
  type Services,
  type SnapshotSection,
  type StoreDriver,
} from './spec/plugin.ts';

export class PluginLoadError extends Error {
  override name = 'PluginLoadError';
}

const KINDS: readonly PluginKind[] = PLUGIN_KINDS;
const STAGES: readonly HookStage[] = HOOK_STAGES;
const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const ROLES = new Set(['operator', 'admin', 'developer', 'viewer']);
const NAME_PATTERN = /^[a-z0-9@][a-z0-9@/._-]{0,99}$/;

export interface RegisteredHook<Stage extends HookStage> {
  plugin: string;
  run: NonNullable<Hooks[Stage]>;
}

export type HookTable = { [Stage in HookStage]: Array<RegisteredHook<Stage>> };

export interface LoadedPlugin {
  name: string;
  version: string;
  kind: PluginKind;
  description: string | undefined;
  source: string;
  /** The names of the environment variables it declares (`KEYWAY_KEY_*` for a prefix); undefined: it declared none, and may read any. */
  environment?: readonly string[];
}

/** A contribution with the name of the plugin that made it, for error messages and namespacing. */
export interface Contributed<Value> {
  plugin: string;
  value: Value;
}

export interface PluginSet {
  plugins: LoadedPlugin[];
  providers: Map<string, ProviderAdapter>;
  strategies: Map<string, RoutingStrategy>;
  cryptoBackends: Map<string, CryptoBackend>;
  alertChannels: AlertChannel[];
  keySources: Map<string, KeySource>;
  dialects: Map<string, Dialect>;
  storeDrivers: Array<Contributed<StoreDriver>>;
  countersDrivers: Array<Contributed<CountersDriver>>;
  clusterDrivers: Array<Contributed<ClusterDriver>>;
  routes: Array<Contributed<RouteDefinition>>;
  /** Plugin migrations by store dialect. */
  migrations: Array<{ plugin: string; dialect: string; migrations: readonly Migration[] }>;
  /** Plugin usage roll-up statements by store dialect. */
  usageRollups: Array<{ plugin: string; dialect: string; statements: readonly string[] }>;
  /** Plugin roll-up tables declared as data, for every store that takes them. */
  usageFolds: UsageFold[];
  jobs: Array<Contributed<JobDefinition>>;
  snapshotSections: Array<Contributed<SnapshotSection>>;
  /** Where plugins keep ciphertexts, for master-key rotation. */
  ciphertextHolders: Array<Contributed<CiphertextHolder>>;
  hooks: HookTable;
  /** Observers of management actions (core/http/admin-actions.ts). */
  adminActionObservers: Array<Contributed<AdminActionObserver>>;
  keyDecryptionObservers: Array<Contributed<KeyDecryptionObserver>>;
  /** Session resolvers for management routes (core/credentials/authenticate.ts). */
  sessionCredentials: Array<Contributed<SessionCredentialResolver>>;
  /** What a management request waits for when its session was opened elsewhere in the cluster. */
  sessionArrivals: Array<Contributed<SessionArrival>>;
  /** Checks run on every authenticated management call (core/http/kit/guard.ts). */
  managementGuards: Array<Contributed<ManagementGuard>>;
  /** Narrow GET /v1/models to what the caller may call (core/http/inference-routes.ts). */
  modelFilters: Array<Contributed<ModelFilter>>;
  /** The account's maximum key age, set by POST /v1/providers/keys' encryption block (core/credentials/rotation-request.ts). */
  keyAgePolicy: Contributed<KeyAgePolicy> | undefined;
}

export interface PluginEnvironment {
  logger: Logger;
  fetch: typeof fetch;
  env: Record<string, string | undefined>;
  dataDirectory: string;
  /** Per-plugin configuration by plugin name. */
  config: Record<string, unknown>;
  services: Services;
}

export interface PluginSource {
  definition: PluginDefinition;
  /** `builtin` or the module path it came from, for error messages. */
  source: string;
}

function fail(source: PluginSource | string, message: string): never {
  const where = typeof source === 'string' ? source : `plugin '${source.definition.name ?? '?'}' (${source.source})`;
  throw new PluginLoadError(`${where}: ${message}`);
}

/** Checks a declaration's shape before anything of it runs. */
export function validateDefinition(source: PluginSource): void {
  const definition = source.definition as Partial<PluginDefinition> | undefined;
  if (definition === null || typeof definition !== 'object') fail(source.source, 'does not export a plugin object');
  if (typeof definition.name !== 'string' || !NAME_PATTERN.test(definition.name)) {
    fail(source.source, `has an invalid name ${JSON.stringify(definition.name)}: use lowercase letters, digits, '-', '_', '.', '/' or '@'`);
  }
  if (typeof definition.version !== 'string' || definition.version.length === 0) fail(source, 'needs a version string');
  if (definition.apiVersion !== PLUGIN_API_VERSION) {
    fail(source, `targets plugin API version ${String(definition.apiVersion)}, but this Keyway supports version ${PLUGIN_API_VERSION}`);
  }
  if (!KINDS.includes(definition.kind as PluginKind)) fail(source, `has unknown kind ${JSON.stringify(definition.kind)}; kinds are ${KINDS.join(', ')}`);
  if (definition.dependencies !== undefined && (!Array.isArray(definition.dependencies) || definition.dependencies.some((name) => typeof name !== 'string'))) {
    fail(source, 'dependencies must be an array of plugin names');
  }
  if (definition.setup !== undefined && typeof definition.setup !== 'function') fail(source, 'setup must be a function');
  validateHooks(source, definition.hooks);
  validateEnvironment(source, definition);
}

/** A variable name, or a prefix of names ending in `*`. */
const VARIABLE_DECLARATION = /^[A-Z_][A-Z0-9_]{0,127}\*?$/;

function validateEnvironment(source: PluginSource, definition: Partial<PluginDefinition>): void {
  if (definition.environment !== undefined && definition.env !== undefined) fail(source, 'declares both environment and env: use one');
  const declared: unknown = definition.environment ?? definition.env;
  if (declared === undefined) return;
  if (!Array.isArray(declared)) fail(source, 'environment must be an array of variable names or { name, description }');
  for (const entry of declared as unknown[]) {
    const name = typeof entry === 'string' ? entry : (entry as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || !VARIABLE_DECLARATION.test(name))
      fail(
        source,
        `declares an invalid environment variable ${JSON.stringify(name ?? entry)}: upper-case letters, digits and '_', with an optional trailing '*'`,
      );
  }
}

/** The variable names a plugin declares, or undefined when it declares none (neither `environment` nor `env`). */
export function declaredVariableNames(definition: PluginDefinition): string[] | undefined {
  const declared = definition.environment ?? definition.env;
  return declared?.map((entry) => (typeof entry === 'string' ? entry : entry.name));
}

function validateHooks(source: PluginSource, hooks: Hooks | undefined): void {
  if (hooks === undefined) return;
  if (hooks === null || typeof hooks !== 'object') fail(source, 'hooks must be an object');
  for (const [stage, hook] of Object.entries(hooks)) {
    if (!STAGES.includes(stage as HookStage)) fail(source, `has a hook for unknown stage '${stage}'; stages are ${STAGES.join(', ')}`);
    if (typeof hook !== 'function') fail(source, `hook '${stage}' must be a function`);
  }
}

/** Orders plugins so each comes after its dependencies; ties keep declaration order. */
export function orderByDependencies(sources: PluginSource[]): PluginSource[] {
  const byName = new Map<string, PluginSource>();
  for (const source of sources) {
    if (byName.has(source.definition.name)) fail(source, `is declared twice (also by ${byName.get(source.definition.name)?.source})`);
    byName.set(source.definition.name, source);
  }
  for (const source of sources) {
    for (const dependency of source.definition.dependencies ?? []) {
      if (!byName.has(dependency)) fail(source, `depends on '${dependency}', which is not loaded`);
    }
  }
  const ordered: PluginSource[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (source: PluginSource, path: string[]): void => {
    const name = source.definition.name;
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') fail(source, `has a dependency cycle: ${[...path, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dependency of source.definition.dependencies ?? []) visit(byName.get(dependency) as PluginSource, [...path, name]);
    state.set(name, 'done');
    ordered.push(source);
  };
  for (const source of sources) visit(source, []);
  return ordered;
}

function resolveConfig(source: PluginSource, raw: unknown): unknown {
  const schema = source.definition.configSchema;
  if (schema === undefined) return raw ?? {};
  const unknownSetting = unknownPluginSetting(source.definition.name, schema, raw);
  if (unknownSetting !== undefined) fail(source, unknownSetting);
  const value = Value.Default(schema, structuredClone(raw ?? {}));
  if (!Value.Check(schema, value)) {
    const problems = [...Value.Errors(schema, value)].slice(0, 5).map((error) => `${error.path || '/'} ${error.message}`);
    fail(source, `configuration is invalid: ${problems.join('; ')}`);
  }
  return value;
}

function checkContributions(source: PluginSource, contributions: PluginContributions): void {
  const required: Partial<Record<PluginKind, keyof PluginContributions>> = {
    provider: 'provider',
    strategy: 'strategy',
    'crypto-backend': 'cryptoBackend',
    'alert-channel': 'alertChannel',
    'key-source': 'keySource',
    store: 'store',
    counters: 'counters',
    dialect: 'dialect',
  };
  const key = required[source.definition.kind];
  if (key !== undefined && contributions[key] === undefined) fail(source, `is a ${source.definition.kind} plugin but its setup returned no '${key}'`);
  validateHooks(source, contributions.hooks);
  validateRoutes(source, contributions.routes);
  validateJobs(source, contributions.jobs);
  validateMigrations(source, contributions.migrations);
  validateUsageRollups(source, contributions.usageRollups);
  validateUsageFolds(source, contributions.usageFolds);
  if (contributions.adminActions !== undefined && typeof contributions.adminActions !== 'function') fail(source, 'adminActions must be a function');
}

function validateRoutes(source: PluginSource, routes: unknown): void {
  if (routes === undefined) return;
  if (!Array.isArray(routes)) fail(source, 'routes must be an array');
  for (const route of routes as RouteDefinition[]) {
    if (route === null || typeof route !== 'object' || !HTTP_METHODS.has(route.method))
      fail(source, `has a route with an unknown method ${JSON.stringify((route as { method?: unknown })?.method)}`);
    if (typeof route.path !== 'string' || !route.path.startsWith('/')) fail(source, `has a route with an invalid path ${JSON.stringify(route.path)}`);
    if (typeof route.handle !== 'function') fail(source, `route ${route.method} ${route.path} has no handle function`);
    if (route.role !== undefined && !ROLES.has(route.role)) fail(source, `route ${route.method} ${route.path} has an unknown role '${String(route.role)}'`);
    if (route.websocket !== undefined && (typeof route.websocket !== 'function' || route.method !== 'GET'))
      fail(source, `route ${route.method} ${route.path}: websocket must be a function, on a GET route`);
  }
}

function validateJobs(source: PluginSource, jobs: unknown): void {
  if (jobs === undefined) return;
  if (!Array.isArray(jobs)) fail(source, 'jobs must be an array');
  for (const job of jobs as JobDefinition[]) {
    if (typeof job?.name !== 'string' || typeof job.run !== 'function') fail(source, 'each job needs a name and a run function');
    if (!Number.isFinite(job.intervalMs) || job.intervalMs < 10) fail(source, `job '${job.name}' needs an intervalMs of at least 10`);
  }
}

function validateUsageRollups(source: PluginSource, rollups: unknown): void {
  if (rollups === undefined) return;
  if (rollups === null || typeof rollups !== 'object') fail(source, 'usageRollups must be an object of dialect → SQL statements');
  for (const [dialect, list] of Object.entries(rollups as Record<string, unknown>)) {
    if (!Array.isArray(list) || list.some((statement) => typeof statement !== 'string'))
      fail(source, `usageRollups for '${dialect}' must be an array of SQL statements`);
  }
}

function validateUsageFolds(source: PluginSource, folds: unknown): void {
  if (folds === undefined) return;
  try {
    validateUsageFoldTables(folds);
  } catch (error) {
    fail(source, error instanceof Error ? error.message : String(error));
  }
}

function validateMigrations(source: PluginSource, migrations: unknown): void {
  if (migrations === undefined) return;
  if (migrations === null || typeof migrations !== 'object') fail(source, 'migrations must be an object of dialect → migration list');
  for (const [dialect, list] of Object.entries(migrations as Record<string, unknown>)) {
    if (!Array.isArray(list)) fail(source, `migrations for '${dialect}' must be an array`);
    const seen = new Set<string>();
    for (const migration of list as Migration[]) {
      if (typeof migration?.id !== 'string' || !/^[\w.-]{1,100}$/.test(migration.id)) fail(source, `has a ${dialect} migration with an invalid id`);
      if (seen.has(migration.id)) fail(source, `has the ${dialect} migration '${migration.id}' twice`);
      seen.add(migration.id);
      if (!Array.isArray(migration.statements) || migration.statements.some((statement) => typeof statement !== 'string'))
        fail(source, `migration '${migration.id}' needs an array of SQL statements`);
    }
  }
}

export function emptyPluginSet(): PluginSet {
  return {
    plugins: [],
    providers: new Map(),
    strategies: new Map(),
    cryptoBackends: new Map(),
    alertChannels: [],
    keySources: new Map(),
    dialects: new Map(),
    storeDrivers: [],
    countersDrivers: [],
    clusterDrivers: [],
    routes: [],
    migrations: [],
    usageRollups: [],
    usageFolds: [],
    jobs: [],
    snapshotSections: [],
    ciphertextHolders: [],
    hooks: emptyHookTable(),
    adminActionObservers: [],
    keyDecryptionObservers: [],
    sessionCredentials: [],
    sessionArrivals: [],
    managementGuards: [],
    modelFilters: [],
    keyAgePolicy: undefined,
  };
}

function registerCapabilities(set: PluginSet, source: PluginSource, contributions: PluginContributions): void {
  const plugin = source.definition.name;
  const { dialect, store, counters, cluster } = contributions;
  if (dialect) {
    if (set.dialects.has(dialect.name)) fail(source, `registers dialect '${dialect.name}', which another plugin already registered`);
    set.dialects.set(dialect.name, dialect);
  }
  if (store) set.storeDrivers.push({ plugin, value: store });
  if (counters) set.countersDrivers.push({ plugin, value: counters });
  if (cluster) set.clusterDrivers.push({ plugin, value: cluster });
  for (const route of contributions.routes ?? []) {
    const clash = set.routes.find((existing) => existing.value.method === route.method && existing.value.path === route.path);
    if (clash !== undefined) fail(source, `adds the route ${route.method} ${route.path}, which plugin '${clash.plugin}' already added`);
    set.routes.push({ plugin, value: route });
  }
  for (const [dialectName, migrations] of Object.entries(contributions.migrations ?? {})) set.migrations.push({ plugin, dialect: dialectName, migrations });
  for (const [dialectName, statements] of Object.entries(contributions.usageRollups ?? {})) set.usageRollups.push({ plugin, dialect: dialectName, statements });
  if (contributions.usageFolds !== undefined && contributions.usageFolds.length > 0) set.usageFolds.push({ plugin, tables: contributions.usageFolds });
  for (const job of contributions.jobs ?? []) set.jobs.push({ plugin, value: job });
  if (contributions.adminActions !== undefined) set.adminActionObservers.push({ plugin, value: contributions.adminActions });
  if (contributions.keyDecryptions !== undefined) set.keyDecryptionObservers.push({ plugin, value: contributions.keyDecryptions });
  if (contributions.sessionCredentials !== undefined) set.sessionCredentials.push({ plugin, value: contributions.sessionCredentials });
  if (contributions.sessionArrivals !== undefined) set.sessionArrivals.push({ plugin, value: contributions.sessionArrivals });
  if (contributions.managementGuard !== undefined) set.managementGuards.push({ plugin, value: contributions.managementGuard });
  if (contributions.modelFilter !== undefined) set.modelFilters.push({ plugin, value: contributions.modelFilter });
  if (contributions.keyAgePolicy !== undefined) {
    if (set.keyAgePolicy !== undefined) fail(source, `keeps a key age policy, which plugin '${set.keyAgePolicy.plugin}' already keeps`);
    set.keyAgePolicy = { plugin, value: contributions.keyAgePolicy };
  }
  for (const section of contributions.snapshot ?? []) {
    if (set.snapshotSections.some((existing) => existing.value.name === section.name)) fail(source, `adds the snapshot section '${section.name}' twice`);
    set.snapshotSections.push({ plugin, value: section });
  }
  for (const holder of contributions.ciphertextHolders ?? []) {
    if (set.ciphertextHolders.some((existing) => existing.value.name === holder.name)) fail(source, `adds the ciphertext holder '${holder.name}' twice`);
    set.ciphertextHolders.push({ plugin, value: holder });
  }
}

function emptyHookTable(): HookTable {
  return { auth: [], keyResolve: [], route: [], call: [], account: [] };
}

function addHooks(table: HookTable, plugin: string, hooks: Hooks | undefined): void {
  if (hooks === undefined) return;
  for (const stage of STAGES) {
    const hook = hooks[stage];
    // Each stage's list is typed by its stage; the cast only bridges TypeScript's per-key union.
    if (hook !== undefined) (table[stage] as Array<RegisteredHook<HookStage>>).push({ plugin, run: hook.bind(hooks) as RegisteredHook<HookStage>['run'] });
  }
}

/** Validates, orders and sets up every plugin; any problem stops the start with a clear message. */
export async function loadPlugins(sources: PluginSource[], environment: PluginEnvironment): Promise<PluginSet> {
  for (const source of sources) validateDefinition(source);
  const set = emptyPluginSet();
  const ordered = orderByDependencies(sources);
  // Every section is checked before any setup runs: a refused setting then leaves nothing set up (a
  // generated master key, a store opened) behind it.
  const configs = ordered.map((source) => resolveConfig(source, environment.config[source.definition.name]));
  for (const [index, source] of ordered.entries()) {
    const { definition } = source;
    const config = configs[index];
    let contributions: PluginContributions = {};
    try {
      contributions =
        (await definition.setup?.({
          config: config as never,
          logger: environment.logger.child({ plugin: definition.name }),
          fetch: environment.fetch,
          env: environment.env,
          dataDirectory: environment.dataDirectory,
          services: environment.services,
        })) ?? {};
    } catch (error) {
      if (error instanceof PluginLoadError) throw error;
      // A variable the plugin could not read names itself: the operator fixes the variable, not the plugin.
      // By name too: an out-of-tree plugin in the compiled binary cannot import the class.
      if (error instanceof SettingError) throw error;
      if (error instanceof Error && error.name === 'SettingError') throw new SettingError(error.message);
      fail(source, `setup failed: ${(error as Error).message}`);
    }
    checkContributions(source, contributions);
    register(set, source, contributions);
  }
  return set;
}

function register(set: PluginSet, source: PluginSource, contributions: PluginContributions): void {
  const { definition } = source;
  const { provider, strategy, cryptoBackend, alertChannel, keySource } = contributions;
  if (provider) {
    if (set.providers.has(provider.name)) fail(source, `registers provider '${provider.name}', which another plugin already registered`);
    set.providers.set(provider.name, provider);
  }
  if (strategy) {
    if (set.strategies.has(strategy.name)) fail(source, `registers strategy '${strategy.name}', which another plugin already registered`);
    set.strategies.set(strategy.name, strategy);
  }
  if (cryptoBackend) {
    if (set.cryptoBackends.has(cryptoBackend.name)) fail(source, `registers crypto backend '${cryptoBackend.name}' twice`);
    set.cryptoBackends.set(cryptoBackend.name, cryptoBackend);
  }
  if (alertChannel) set.alertChannels.push(alertChannel);
  if (keySource) {
    if (set.keySources.has(keySource.name)) fail(source, `registers key source '${keySource.name}', which another plugin already registered`);
    // Every key a source answers meets the key-material rule before it becomes a key (fetched-keys.ts).
    set.keySources.set(keySource.name, checkedKeySource(keySource));
  }
  registerCapabilities(set, source, contributions);
  addHooks(set.hooks, definition.name, definition.hooks);
  addHooks(set.hooks, definition.name, contributions.hooks);
  set.plugins.push({
    name: definition.name,
    version: definition.version,
    kind: definition.kind,
    description: definition.description,
    source: source.source,
    environment: declaredVariableNames(definition),
  });
}

/**
 * Imports third-party plugin modules (KEYWAY_PLUGINS). A module exports its plugin as `default`,
 * `plugin`, or an array `plugins`. Works from source and from the compiled binary, which can
 * import TypeScript and JavaScript files from disk.
 */
export async function importPluginModules(paths: string[], baseDirectory: string = process.cwd()): Promise<PluginSource[]> {
  const sources: PluginSource[] = [];
  for (const path of paths) {
    const absolute = isAbsolute(path) ? path : resolve(baseDirectory, path);
    if (!existsSync(absolute)) throw new PluginLoadError(`KEYWAY_PLUGINS: ${absolute} does not exist`);
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
    } catch (error) {
      throw new PluginLoadError(`KEYWAY_PLUGINS: cannot load ${absolute}: ${(error as Error).message}`);
    }
    const exported = module.plugins ?? module.default ?? module.plugin;
    const definitions = Array.isArray(exported) ? exported : [exported];
    if (exported === undefined) throw new PluginLoadError(`KEYWAY_PLUGINS: ${absolute} exports no plugin (use a default export, 'plugin' or 'plugins')`);
    for (const definition of definitions) sources.push({ definition: definition as PluginDefinition, source: absolute });
  }
  return sources;
}
