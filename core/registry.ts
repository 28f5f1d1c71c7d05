import { Value } from '@sinclair/typebox/value';
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from './logger.ts';
import {
  PLUGIN_API_VERSION,
  type AlertChannel,
  type CryptoBackend,
  type HookStage,
  type Hooks,
  type PluginContributions,
  type PluginDefinition,
  type PluginKind,
  type ProviderAdapter,
  type RoutingStrategy,
} from './spec/plugin.ts';

export class PluginLoadError extends Error {
  override name = 'PluginLoadError';
}

const KINDS: readonly PluginKind[] = ['provider', 'strategy', 'policy', 'alert-channel', 'crypto-backend'];
const STAGES: readonly HookStage[] = ['auth', 'keyResolve', 'route', 'call', 'account'];
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
}

export interface PluginSet {
  plugins: LoadedPlugin[];
  providers: Map<string, ProviderAdapter>;
  strategies: Map<string, RoutingStrategy>;
  cryptoBackends: Map<string, CryptoBackend>;
  alertChannels: AlertChannel[];
  hooks: HookTable;
}

export interface PluginEnvironment {
  logger: Logger;
  fetch: typeof fetch;
  env: Record<string, string | undefined>;
  dataDirectory: string;
  /** Per-plugin configuration by plugin name. */
  config: Record<string, unknown>;
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
  };
  const key = required[source.definition.kind];
  if (key !== undefined && contributions[key] === undefined) fail(source, `is a ${source.definition.kind} plugin but its setup returned no '${key}'`);
  validateHooks(source, contributions.hooks);
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
  const set: PluginSet = { plugins: [], providers: new Map(), strategies: new Map(), cryptoBackends: new Map(), alertChannels: [], hooks: emptyHookTable() };
  for (const source of orderByDependencies(sources)) {
    const { definition } = source;
    const config = resolveConfig(source, environment.config[definition.name]);
    let contributions: PluginContributions = {};
    try {
      contributions =
        (await definition.setup?.({
          config: config as never,
          logger: environment.logger.child({ plugin: definition.name }),
          fetch: environment.fetch,
          env: environment.env,
          dataDirectory: environment.dataDirectory,
        })) ?? {};
    } catch (error) {
      if (error instanceof PluginLoadError) throw error;
      fail(source, `setup failed: ${(error as Error).message}`);
    }
    checkContributions(source, contributions);
    register(set, source, contributions);
  }
  return set;
}

function register(set: PluginSet, source: PluginSource, contributions: PluginContributions): void {
  const { definition } = source;
  const { provider, strategy, cryptoBackend, alertChannel } = contributions;
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
  addHooks(set.hooks, definition.name, definition.hooks);
  addHooks(set.hooks, definition.name, contributions.hooks);
  set.plugins.push({ name: definition.name, version: definition.version, kind: definition.kind, description: definition.description, source: source.source });
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
