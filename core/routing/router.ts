// The request lifecycle: auth → key-resolve → route → call → account. Each stage does the core's
// work, then runs the plugins' hooks for it. Nothing here awaits the database.

import { costOf, usageRow } from '../accounting/usage-row.ts';
import { runAttempts, type AttemptSuccess } from '../lifecycle/attempts.ts';
import type { ModelCatalog } from '../catalog/catalog.ts';
import type { GatewayConfig } from '../config.ts';
import type { ConfigStore } from '../credentials/snapshot.ts';
import { errorFromDescriptor, KeywayError } from '../errors.ts';
import { runHooks } from '../lifecycle/hooks.ts';
import type { KeyVault } from '../credentials/key-vault.ts';
import type { Logger } from '../logger.ts';
import { resolveModel, type ModelResolverDependencies } from './resolve-model.ts';
import type { ModelsCache } from './reported-models.ts';
import type { HealthMonitor } from './health/monitor.ts';
import type { ModelClassOverrides, ModelClassTable } from './model-classes.ts';
import type { CallContext, ProviderAdapter, ProviderKeyRecord, RequestContext, RequestOutcome, RoutingStrategy } from '../spec/plugin.ts';
import type { PluginSet } from '../registry.ts';
import type { UsageQueue } from '../accounting/usage-queue.ts';
import type { RoutingOptions, StreamPart } from '../spec/vocabulary.ts';

export { DEFAULT_FALLBACK_REASONS, type AttemptSuccess } from '../lifecycle/attempts.ts';
const DEFAULT_STRATEGY = 'byok_preferred';

export interface GatewayDependencies {
  plugins: PluginSet;
  store: ConfigStore;
  vault: KeyVault;
  models: ModelsCache;
  catalog: ModelCatalog;
  usage: UsageQueue;
  logger: Logger;
  config: GatewayConfig;
  health: HealthMonitor;
  /** The operator's table (shipped table plus operator overrides); accounts may override further. */
  modelClasses: () => ModelClassTable;
}

export class Gateway {
  readonly isAvailable: (key: ProviderKeyRecord) => boolean;
  readonly isCoolingDown: (key: ProviderKeyRecord) => boolean;
  private readonly resolver: ModelResolverDependencies;
  private readonly accountTables = new WeakMap<object, ModelClassTable>();

  constructor(readonly dependencies: GatewayDependencies) {
    this.isAvailable = (key) => dependencies.health.isAvailable(key);
    this.isCoolingDown = (key) => dependencies.health.isCoolingDown(key);
    this.resolver = { providers: dependencies.plugins.providers, catalog: dependencies.catalog, models: dependencies.models };
  }

  /** The model-class table an account sees: its overrides on top of the operator's table. */
  modelClassesFor(accountId: string): ModelClassTable {
    const base = this.dependencies.modelClasses();
    const settings = this.dependencies.store.current.accounts.get(accountId)?.settings;
    const overrides = settings?.model_classes as ModelClassOverrides | undefined;
    if (settings === undefined || overrides === undefined) return base;
    let table = this.accountTables.get(settings);
    if (table === undefined) {
      table = base.withOverrides(overrides);
      this.accountTables.set(settings, table);
    }
    return table;
  }

  private readonly equivalentsCache = new WeakMap<ModelClassTable, Map<string, ReadonlyMap<string, string> | undefined>>();

  /** Each provider's model of the request's class; cached per table, so routing allocates nothing. */
  private equivalentsFor(table: ModelClassTable, provider: string | undefined, model: string): ReadonlyMap<string, string> | undefined {
    let cache = this.equivalentsCache.get(table);
    if (cache === undefined) this.equivalentsCache.set(table, (cache = new Map()));
    const key = `${provider ?? ''}\u0000${model}`;
    if (cache.has(key)) return cache.get(key);
    const modelClass = table.classOf(model);
    let equivalents: Map<string, string> | undefined;
    if (modelClass !== undefined) {
      equivalents = new Map(Object.entries(modelClass.models));
      // The provider the request named keeps the exact model the client asked for.
      if (provider !== undefined) equivalents.set(provider, model);
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(key, equivalents);
    return equivalents;
  }

  private price(provider: string, model: string): number | undefined {
    const info = this.dependencies.catalog.get(provider, model);
    return info === undefined ? undefined : info.inputCostPerToken + info.outputCostPerToken;
  }

  /**
   * auth hooks (the core's own check ran in the HTTP layer), then key-resolve, route and the call
   * stage's hooks. Synchronous unless a hook is async: no microtask is spent when none is.
   */
  prepare(context: RequestContext): void | Promise<void> {
    if (context.principal.role === 'viewer' || !context.principal.byokAccess) {
      throw new KeywayError('byok_access_denied', { detail: 'This key may read usage but not call models.' });
    }
    const { hooks } = this.dependencies.plugins;
    const auth = runHooks(hooks, 'auth', context);
    if (auth !== undefined) return auth.then(() => this.afterAuth(context));
    return this.afterAuth(context);
  }

  private afterAuth(context: RequestContext): void | Promise<void> {
    const { hooks } = this.dependencies.plugins;
    this.resolveKeys(context);
    const keyResolve = runHooks(hooks, 'keyResolve', context);
    if (keyResolve !== undefined) return keyResolve.then(() => this.afterKeyResolve(context));
    return this.afterKeyResolve(context);
  }

  private afterKeyResolve(context: RequestContext): void | Promise<void> {
    const { hooks } = this.dependencies.plugins;
    this.route(context);
    const route = runHooks(hooks, 'route', context);
    if (route !== undefined) return route.then(() => runHooks(hooks, 'call', context));
    return runHooks(hooks, 'call', context);
  }

  /** The provider a model name would select, or undefined; for dialect translation before routing. */
  peekProvider(accountId: string, model: string, providerField: string | undefined): string | undefined {
    try {
      return resolveModel(this.resolver, accountId, this.dependencies.store.keysFor(accountId), model, providerField).provider;
    } catch {
      return undefined;
    }
  }

  private resolveKeys(context: RequestContext): void {
    const keys = this.dependencies.store.keysFor(context.principal.accountId);
    // `X-Use-BYOK: false` asks for the operator's keys: an explicit permission, never a silent one.
    if (context.headers.get('x-use-byok') === 'false') {
      context.keys = { account: new Map(), platform: keys.platform };
      context.request.routing = { ...context.request.routing, fallback_to_parrotrouter: true };
    } else context.keys = keys;
  }

  routingFor(context: RequestContext): RoutingOptions {
    const requested = context.request.routing;
    const account = this.dependencies.store.current.accounts.get(context.principal.accountId);
    const accountDefault = account?.settings.routing as RoutingOptions | undefined;
    if (requested === undefined) return accountDefault ?? {};
    return accountDefault === undefined ? requested : { ...accountDefault, ...requested };
  }

  private route(context: RequestContext): void {
    const keys = context.keys ?? this.dependencies.store.keysFor(context.principal.accountId);
    const routing = this.routingFor(context);
    const strategyName = routing.strategy ?? DEFAULT_STRATEGY;
    const strategy: RoutingStrategy | undefined = this.dependencies.plugins.strategies.get(strategyName);
    if (strategy === undefined) {
      throw new KeywayError('invalid_field', { param: 'routing.strategy', detail: `unknown strategy '${strategyName}'; known: ${[...this.dependencies.plugins.strategies.keys()].join(', ')}` });
    }
    const model = context.request.model;
    const resolution = resolveModel(this.resolver, context.principal.accountId, keys, model, context.request.provider);
    context.resolution = resolution;
    const equivalents = this.equivalentsFor(this.modelClassesFor(context.principal.accountId), resolution.provider, resolution.model);
    context.candidates = strategy.plan({
      request: context.request,
      resolution,
      routing,
      keys,
      isAvailable: this.isAvailable,
      isCoolingDown: this.isCoolingDown,
      stickyKey: context.headers.get('x-session-id') ?? (typeof context.request.user === 'string' ? context.request.user : undefined),
      equivalents,
      price: (provider, model) => this.price(provider, model),
      platformMarkupPercent: (this.dependencies.store.current.platformSettings.platform_markup_percent as number | undefined) ?? 5,
    });
    if (context.candidates.length === 0) throw this.noCandidates(context, resolution.provider, routing);
  }

  private noCandidates(context: RequestContext, provider: string | undefined, routing: RoutingOptions): KeywayError {
    const keys = context.keys;
    const held = provider === undefined ? [] : (keys?.account.get(provider) ?? []);
    let detail: string;
    let retryAfterSeconds: number | undefined;
    if (provider === undefined) detail = `No provider can serve '${context.request.model}' with the keys this account may use.`;
    else if (held.length === 0) detail = `No ${provider} provider key is configured for this account; add one with POST /v1/providers/keys${routing.fallback_to_parrotrouter ? '' : ' (or allow platform keys with routing.fallback_to_parrotrouter)'}.`;
    else {
      // Say why (health check, refused key), not the stored status, which stays `active` for a disabled provider.
      const reasons = held.map((key) => this.dependencies.health.unavailableReason(key) ?? { reason: `key ${key.id} is ${key.status}` });
      const waits = reasons.map((entry) => entry.retryAfterSeconds).filter((seconds): seconds is number => seconds !== undefined);
      retryAfterSeconds = waits.length > 0 ? Math.min(...waits) : undefined;
      detail = `Every ${provider} provider key of this account is unavailable: ${[...new Set(reasons.map((entry) => entry.reason))].join('; ')}.`;
    }
    return new KeywayError('no_provider_available', { detail }, { retryAfterSeconds, extra: provider === undefined ? {} : { provider } });
  }

  /**
   * Tries the candidates (core/attempts.ts). `run` must settle once the upstream's first byte is in
   * hand: that is the point of no return for fallback.
   */
  attempt<Value>(context: RequestContext, run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>, clientSignal: AbortSignal | undefined): Promise<AttemptSuccess<Value>> {
    const { plugins, vault, health, config } = this.dependencies;
    return runAttempts({ providers: plugins.providers, vault, health, config }, context, this.routingFor(context), run, clientSignal);
  }

  /** The first part of a stream decides whether the attempt succeeded: an error there may still fall back. */
  async openStream(adapter: ProviderAdapter, call: CallContext, context: RequestContext): Promise<{ iterator: AsyncIterator<StreamPart>; first: StreamPart }> {
    const parts = await adapter.chatStream(context.request, call);
    const iterator = parts[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw new KeywayError('upstream_error', { detail: `${adapter.name} closed the stream without sending anything` }, { reason: 'server_error' });
    if (first.value.type === 'error') throw errorFromDescriptor(first.value.error);
    return { iterator, first: first.value };
  }

  /** Prices the call and queues its usage row; runs the account hooks without letting them fail the request. */
  account(context: RequestContext, outcome: Omit<RequestOutcome, 'costUsd' | 'latencyMs'>): RequestOutcome {
    const served = context.served;
    const costUsd =
      outcome.providerCostUsd ??
      (served !== undefined && outcome.usage !== undefined ? costOf(this.dependencies.catalog, served.provider, [served.model, context.candidates[0]?.model ?? served.model], outcome.usage) : undefined);
    const full: RequestOutcome = { ...outcome, costUsd, latencyMs: performance.now() - context.startedAt };
    this.dependencies.usage.enqueue(usageRow(context, full));
    this.logOutcome(context, full);
    for (const hook of this.dependencies.plugins.hooks.account) {
      try {
        const result = hook.run(context, full);
        if (result instanceof Promise) result.catch((error: unknown) => this.logAccountHookError(hook.plugin, error));
      } catch (error) {
        this.logAccountHookError(hook.plugin, error);
      }
    }
    return full;
  }

  private logOutcome(context: RequestContext, outcome: RequestOutcome): void {
    const { logger } = this.dependencies;
    const level = outcome.status >= 500 ? 'warn' : 'debug';
    if (!logger.isLevelEnabled(level)) return;
    logger[level](
      {
        requestId: context.requestId,
        accountId: context.principal.accountId,
        gatewayKeyId: context.principal.keyId,
        status: outcome.status,
        provider: context.served?.provider,
        model: context.served?.model,
        providerKeyId: context.served?.keyId,
        attempts: context.attempts,
        latencyMs: Math.round(outcome.latencyMs * 100) / 100,
        error: outcome.error === undefined ? undefined : { code: outcome.error.code, message: outcome.error.message },
        headers: Object.fromEntries(context.headers),
      },
      'request finished',
    );
  }

  private logAccountHookError(plugin: string, error: unknown): void {
    this.dependencies.logger.error({ plugin, error: error instanceof Error ? error.message : String(error) }, 'account hook failed');
  }
}
