// The request lifecycle: auth → key-resolve → route → call → account. Each stage does the core's
// work, then runs the plugins' hooks for it. Nothing here awaits the database.

import { costOf } from './accounting.ts';
import type { ModelCatalog } from './catalog.ts';
import type { GatewayConfig } from './config.ts';
import type { ConfigStore } from './config-store.ts';
import { errorFromDescriptor, KeywayError } from './errors.ts';
import { runHooks } from './hooks.ts';
import type { KeyVault } from './key-vault.ts';
import type { Logger } from './logger.ts';
import { resolveModel, type ModelResolverDependencies } from './model-resolution.ts';
import type { ModelsCache } from './models-cache.ts';
import type { AttemptRecord, CallContext, ProviderAdapter, ProviderKeyRecord, RequestContext, RequestOutcome, RouteCandidate, RoutingStrategy } from './plugin.ts';
import type { PluginSet } from './registry.ts';
import type { UsageQueue } from './usage-queue.ts';
import { usageRow } from './accounting.ts';
import type { FailureReason, RoutingOptions, StreamPart } from './vocabulary.ts';

export const DEFAULT_FALLBACK_REASONS: readonly FailureReason[] = ['rate_limit', 'timeout', 'server_error', 'model_not_available'];
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
  /** Whether a key may serve now; health monitoring plugs in here. */
  isAvailable?: (key: ProviderKeyRecord) => boolean;
}

export interface AttemptSuccess<Value> {
  value: Value;
  candidate: RouteCandidate;
  call: CallContext;
  /** Aborts the upstream call (client gone, total deadline). */
  abort: AbortController;
  /** Clears the total-deadline timer once the response is complete. */
  done(): void;
}

const availableByStatus = (key: ProviderKeyRecord): boolean => key.status !== 'invalid' && key.status !== 'disabled' && key.status !== 'deleted';

export class Gateway {
  readonly isAvailable: (key: ProviderKeyRecord) => boolean;
  private readonly resolver: ModelResolverDependencies;

  constructor(readonly dependencies: GatewayDependencies) {
    this.isAvailable = dependencies.isAvailable ?? availableByStatus;
    this.resolver = { providers: dependencies.plugins.providers, catalog: dependencies.catalog, models: dependencies.models };
  }

  /** auth hooks (the core's own check ran in the HTTP layer), then key-resolve and route. */
  async prepare(context: RequestContext): Promise<void> {
    const { hooks } = this.dependencies.plugins;
    if (context.principal.role === 'viewer' || !context.principal.byokAccess) {
      throw new KeywayError('byok_access_denied', { detail: 'This key may read usage but not call models.' });
    }
    const auth = runHooks(hooks, 'auth', context);
    if (auth) await auth;
    this.resolveKeys(context);
    const keyResolve = runHooks(hooks, 'keyResolve', context);
    if (keyResolve) await keyResolve;
    this.route(context);
    const route = runHooks(hooks, 'route', context);
    if (route) await route;
    const call = runHooks(hooks, 'call', context);
    if (call) await call;
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
    context.candidates = strategy.plan({ request: context.request, resolution, routing, keys, isAvailable: this.isAvailable });
    if (context.candidates.length === 0) throw this.noCandidates(context, resolution.provider, routing);
  }

  private noCandidates(context: RequestContext, provider: string | undefined, routing: RoutingOptions): KeywayError {
    const keys = context.keys;
    const held = provider === undefined ? [] : (keys?.account.get(provider) ?? []);
    let detail: string;
    if (provider === undefined) detail = `No provider can serve '${context.request.model}' with the keys this account may use.`;
    else if (held.length === 0) detail = `No ${provider} provider key is configured for this account; add one with POST /v1/providers/keys${routing.fallback_to_parrotrouter ? '' : ' (or allow platform keys with routing.fallback_to_parrotrouter)'}.`;
    else detail = `Every ${provider} provider key of this account is unavailable (${held.map((key) => `${key.id}: ${key.status}`).join(', ')}).`;
    return new KeywayError('no_provider_available', { detail }, { extra: provider === undefined ? {} : { provider } });
  }

  /**
   * Tries the candidates in order until one succeeds, falling back only on the request's fallback
   * reasons. `run` must settle once the upstream's first byte is in hand: that is the point of no return.
   */
  async attempt<Value>(context: RequestContext, run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>, clientSignal: AbortSignal | undefined): Promise<AttemptSuccess<Value>> {
    const routing = this.routingFor(context);
    const reasons = routing.fallback_reasons ?? DEFAULT_FALLBACK_REASONS;
    const firstByteTimeoutMs = routing.timeout_ms ?? this.dependencies.config.firstByteTimeoutMs;
    let lastError: KeywayError | undefined;
    for (let position = 0; position < context.candidates.length; position++) {
      const candidate = context.candidates[position] as RouteCandidate;
      const adapter = this.dependencies.plugins.providers.get(candidate.provider);
      if (adapter === undefined) continue;
      const started = performance.now();
      const abort = new AbortController();
      const onClientGone = () => abort.abort(new KeywayError('upstream_error', { detail: 'the client closed the connection' }, { reason: 'server_error' }));
      clientSignal?.addEventListener('abort', onClientGone, { once: true });
      const firstByteTimer = setTimeout(
        () => abort.abort(new KeywayError('upstream_timeout', { detail: `${candidate.provider} sent no first byte within ${firstByteTimeoutMs} ms` }, { reason: 'timeout', extra: { provider: candidate.provider } })),
        firstByteTimeoutMs,
      );
      try {
        const credential = this.dependencies.vault.credential(candidate.key);
        const call: CallContext = {
          requestId: context.requestId,
          credential: credential instanceof Promise ? await credential : credential,
          model: candidate.model,
          signal: abort.signal,
          warnings: context.warnings,
          upstream: {},
        };
        const value = await run(adapter, call);
        clearTimeout(firstByteTimer);
        const totalTimer = setTimeout(
          () => abort.abort(new KeywayError('upstream_timeout', { detail: `${candidate.provider} did not finish within ${this.dependencies.config.totalTimeoutMs} ms` }, { reason: 'timeout' })),
          this.dependencies.config.totalTimeoutMs,
        );
        context.served = { provider: candidate.provider, model: candidate.model, keyId: candidate.key.id, owner: candidate.key.owner };
        return {
          value,
          candidate,
          call,
          abort,
          done: () => {
            clearTimeout(totalTimer);
            clientSignal?.removeEventListener('abort', onClientGone);
          },
        };
      } catch (error) {
        clearTimeout(firstByteTimer);
        clientSignal?.removeEventListener('abort', onClientGone);
        if (!abort.signal.aborted) abort.abort();
        const failure = error instanceof KeywayError ? error : new KeywayError('upstream_error', { detail: `${candidate.provider}: ${(error as Error).message}` }, { reason: 'server_error' });
        if (clientSignal?.aborted) throw failure;
        context.attempts.push(attemptRecord(candidate, failure, performance.now() - started));
        lastError = failure;
        const canFallBack = failure.reason !== undefined && reasons.includes(failure.reason) && position < context.candidates.length - 1;
        if (!canFallBack) break;
      }
    }
    throw finalFailure(lastError, context.attempts);
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
      served !== undefined && outcome.usage !== undefined ? costOf(this.dependencies.catalog, served.provider, [served.model, context.candidates[0]?.model ?? served.model], outcome.usage) : undefined;
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

function attemptRecord(candidate: RouteCandidate, failure: KeywayError, durationMs: number): AttemptRecord {
  const upstreamStatus = failure.extra?.upstream_status;
  return {
    provider: candidate.provider,
    model: candidate.model,
    keyId: candidate.key.id,
    owner: candidate.key.owner,
    reason: failure.reason ?? failure.code,
    status: typeof upstreamStatus === 'number' ? upstreamStatus : undefined,
    durationMs: Math.round(durationMs * 1000) / 1000,
  };
}

/** When every candidate failed, the answer follows the last failure and lists every attempt. */
function finalFailure(lastError: KeywayError | undefined, attempts: AttemptRecord[]): KeywayError {
  if (lastError === undefined) return new KeywayError('no_provider_available', { detail: 'No loaded provider could serve this request.' });
  const listed = attempts.map((attempt) => ({ provider: attempt.provider, model: attempt.model, key_id: attempt.keyId, owner: attempt.owner, reason: attempt.reason, status: attempt.status ?? null }));
  const message =
    attempts.length <= 1
      ? lastError.message
      : `All ${attempts.length} attempts failed: ${attempts.map((attempt) => `${attempt.provider}/${attempt.model} (${attempt.reason})`).join(', ')}. Last error: ${lastError.message}`;
  return new KeywayError(lastError.code, {}, {
    message,
    param: lastError.param,
    reason: lastError.reason,
    retryAfterSeconds: lastError.retryAfterSeconds,
    extra: { ...lastError.extra, attempts: listed },
  });
}
