// The route stage: model name → provider → ordered candidates (provider, model, key), by the
// request's strategy, over the keys the caller may use and what health says is available.

import type { ModelCatalog } from '../catalog/catalog.ts';
import type { ConfigSnapshots } from '../credentials/snapshot.ts';
import { invalidField, KeywayError } from '../errors.ts';
import { isKeyMaterial, KEY_MATERIAL_RULE } from '../spec/key-material.ts';
import type { ModelResolution, ProviderAdapter, ResolvedKeys, ProviderKeyRecord, RequestContext, RouteCandidate, RoutingStrategy } from '../spec/plugin.ts';
import type { RoutingOptions } from '../spec/vocabulary.ts';
import type { HealthMonitor } from './health/monitor.ts';
import type { ModelClassOverrides, ModelClassTable } from './model-classes.ts';
import type { ReportedModels } from './reported-models.ts';
import { checkCostWeights, checkProviderOrder, providersSelecting, resolveModel, unknownProvider, type ModelResolverDependencies } from './resolve-model.ts';
import { clientKeys } from '../credentials/client-keys.ts';

const DEFAULT_STRATEGY = 'byok_preferred';
const DEFAULT_PLATFORM_MARKUP_PERCENT = 5;

export interface RouterDependencies {
  providers: ReadonlyMap<string, ProviderAdapter>;
  strategies: ReadonlyMap<string, RoutingStrategy>;
  snapshots: ConfigSnapshots;
  models: ReportedModels;
  catalog: ModelCatalog;
  health: HealthMonitor;
  /** The operator's table (shipped table plus operator overrides); accounts may override further. */
  modelClasses: () => ModelClassTable;
}

/** A resolution a dialect asked for before routing, reused by the route stage when nothing changed. */
interface PeekedResolution {
  accountKeys: ResolvedKeys['account'];
  model: string;
  providerField: string | undefined;
  resolution: ModelResolution;
}

const peeked = new WeakMap<RequestContext, PeekedResolution>();

/**
 * `X-Use-BYOK`: `true` or `false`, in any case (surrounding spaces ignored); absent or empty means
 * `true`. Any other value is a 400 naming the header: `maybe` or `0` must not quietly mean either.
 */
export function useByokHeader(value: string | null): boolean {
  const normalised = value?.trim().toLowerCase() ?? '';
  if (normalised === '') return true;
  if (normalised === 'true') return true;
  if (normalised === 'false') return false;
  throw new KeywayError('invalid_field', { param: 'X-Use-BYOK', detail: 'expected true or false' });
}

export class Router {
  readonly isAvailable: (key: ProviderKeyRecord) => boolean;
  readonly isCoolingDown: (key: ProviderKeyRecord) => boolean;
  private readonly resolver: ModelResolverDependencies;
  private readonly accountTables = new WeakMap<object, ModelClassTable>();
  private readonly equivalentsCache = new WeakMap<ModelClassTable, Map<string, ReadonlyMap<string, string> | undefined>>();
  private readonly priceOf = (provider: string, model: string): number | undefined => {
    const info = this.dependencies.catalog.get(provider, model);
    return info === undefined ? undefined : info.inputCostPerToken + info.outputCostPerToken;
  };

  constructor(readonly dependencies: RouterDependencies) {
    this.isAvailable = (key) => dependencies.health.isAvailable(key);
    this.isCoolingDown = (key) => dependencies.health.isCoolingDown(key);
    this.resolver = { providers: dependencies.providers, catalog: dependencies.catalog, models: dependencies.models };
  }

  /** The model-class table an account sees: its overrides on top of the operator's table. */
  modelClassesFor(accountId: string): ModelClassTable {
    const base = this.dependencies.modelClasses();
    const settings = this.dependencies.snapshots.current.accounts.get(accountId)?.settings;
    const overrides = settings?.model_classes as ModelClassOverrides | undefined;
    if (settings === undefined || overrides === undefined) return base;
    let table = this.accountTables.get(settings);
    if (table === undefined) {
      table = base.withOverrides(overrides);
      this.accountTables.set(settings, table);
    }
    return table;
  }

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

  /**
   * The provider a model name selects for this request's caller, or undefined: for dialects whose
   * translation depends on who serves. The resolution is kept for the route stage.
   */
  peekProvider(context: RequestContext, model: string, providerField: string | undefined): string | undefined {
    try {
      const keys = this.dependencies.snapshots.keysFor(context.principal.accountId);
      const resolution = resolveModel(this.resolver, context.principal.accountId, keys, model, providerField);
      peeked.set(context, { accountKeys: keys.account, model, providerField, resolution });
      return resolution.provider;
    } catch {
      return undefined;
    }
  }

  /** The key-resolve stage's core work: the keys this caller may use. */
  resolveKeys(context: RequestContext): void {
    const useByok = useByokHeader(context.headers.get('x-use-byok'));
    const clientKey = context.headers.get('x-provider-key');
    // The client's own key for this request only: it is the only key used (no stored or platform key
    // as fallback), for the provider X-Provider names or the model selects.
    if (clientKey !== null && clientKey.trim() !== '') {
      // A key no provider could have issued (a pasted `sk-…` placeholder) is the client's mistake, said
      // now: sent on, it cannot even go into the upstream's header and would read as a connection failure.
      if (!isKeyMaterial(clientKey.trim())) throw invalidField('X-Provider-Key', KEY_MATERIAL_RULE);
      context.keys = clientKeys(context, this.clientKeyProvider(context), context.principal.accountId, clientKey.trim());
      return;
    }
    const keys = this.dependencies.snapshots.keysFor(context.principal.accountId);
    // `X-Use-BYOK: false` asks for the operator's keys: an explicit permission, never a silent one.
    if (useByok === false) {
      context.keys = { account: new Map(), platform: keys.platform };
      context.request.routing = { ...context.request.routing, fallback_to_parrotrouter: true };
    } else context.keys = keys;
  }

  private clientKeyProvider(context: RequestContext): string {
    const named = context.headers.get('x-provider')?.trim();
    if (named !== undefined && named !== '') {
      if (!this.dependencies.providers.has(named)) throw unknownProvider('X-Provider', named, this.dependencies.providers);
      this.holdToClientProvider(context, named);
      return named;
    }
    const { model, provider } = context.request;
    const empty = { account: new Map(), platform: new Map() };
    const resolution = resolveModel(this.resolver, context.principal.accountId, empty, model, provider);
    if (resolution.provider === undefined)
      throw new KeywayError('invalid_field', {
        param: 'X-Provider',
        detail: 'X-Provider-Key needs the provider it belongs to: send X-Provider or name the model as provider/model',
      });
    return resolution.provider;
  }

  /**
   * `X-Provider` says whose key `X-Provider-Key` is; it does not send the model to another provider.
   * A model that only other providers serve (`gpt-4` with `X-Provider: google`), or a `provider` field
   * that names another, is a 400 naming the conflict: the key could not serve it, and answering with
   * the account's keys of the model's provider would spend a key the client did not choose. Otherwise
   * the header decides the provider as the `provider` field would (a name no provider is known to
   * serve, such as a fine-tune, goes to it).
   */
  private holdToClientProvider(context: RequestContext, named: string): void {
    const { model, provider } = context.request;
    if (provider !== undefined && provider !== named)
      throw new KeywayError('invalid_field', {
        param: 'X-Provider',
        detail: `X-Provider names ${named} but the request's provider field names ${provider}; X-Provider-Key is used for its own provider only, so send one of them`,
      });
    if (provider === undefined) {
      const serving = providersSelecting(this.resolver, context.principal.accountId, model);
      if (serving.length > 0 && !serving.includes(named)) {
        const example = this.modelClassesFor(context.principal.accountId).classOf(model)?.models[named];
        throw new KeywayError('invalid_field', {
          param: 'X-Provider',
          detail:
            `${named} does not serve the model '${model}' (${serving.join(', ')} ${serving.length === 1 ? 'does' : 'do'}). X-Provider says whose key ` +
            `X-Provider-Key is, and Keyway never sends that key another provider's model: send X-Provider: ${serving[0]} with a key of that provider, ` +
            `or ask for a ${named} model${example === undefined ? '' : ` (such as ${named}/${example})`}`,
        });
      }
      context.request.provider = named;
    }
  }

  /** The request's routing options over the account's defaults. */
  routingFor(context: RequestContext): RoutingOptions {
    const requested = context.request.routing;
    const account = this.dependencies.snapshots.current.accounts.get(context.principal.accountId);
    const accountDefault = account?.settings.routing as RoutingOptions | undefined;
    if (requested === undefined) return accountDefault ?? {};
    return accountDefault === undefined ? requested : { ...accountDefault, ...requested };
  }

  private resolutionFor(context: RequestContext): ModelResolution {
    const keys = context.keys ?? this.dependencies.snapshots.keysFor(context.principal.accountId);
    const earlier = peeked.get(context);
    const { model, provider } = context.request;
    // A peeked resolution holds while the request names the same model and provider over the same
    // keys (X-Use-BYOK: false narrows them, which can change how a tie between providers breaks).
    if (earlier !== undefined && earlier.model === model && earlier.providerField === provider && earlier.accountKeys === keys.account)
      return earlier.resolution;
    return resolveModel(this.resolver, context.principal.accountId, keys, model, provider);
  }

  /** The route stage's core work: resolve the model and let the strategy order the candidates. */
  route(context: RequestContext): void {
    const keys = context.keys ?? this.dependencies.snapshots.keysFor(context.principal.accountId);
    const routing = this.routingFor(context);
    const strategyName = routing.strategy ?? DEFAULT_STRATEGY;
    const strategy = this.dependencies.strategies.get(strategyName);
    if (strategy === undefined) {
      throw new KeywayError('invalid_field', {
        param: 'routing.strategy',
        detail: `unknown strategy '${strategyName}'; known: ${[...this.dependencies.strategies.keys()].join(', ')}`,
      });
    }
    // The request's own order and weights (a stored default was checked when it was saved).
    checkProviderOrder(context.request.routing?.provider_order, this.dependencies.providers);
    checkCostWeights(context.request.routing?.cost_weights, this.dependencies.providers);
    const resolution = this.resolutionFor(context);
    context.resolution = resolution;
    const equivalents = this.equivalentsFor(this.modelClassesFor(context.principal.accountId), resolution.provider, resolution.model);
    const planned = strategy.plan({
      request: context.request,
      resolution,
      routing,
      keys,
      isAvailable: this.isAvailable,
      isCoolingDown: this.isCoolingDown,
      stickyKey: context.headers.get('x-session-id') ?? (typeof context.request.user === 'string' ? context.request.user : undefined),
      equivalents,
      price: this.priceOf,
      platformMarkupPercent:
        (this.dependencies.snapshots.current.platformSettings.platform_markup_percent as number | undefined) ?? DEFAULT_PLATFORM_MARKUP_PERCENT,
    });
    context.candidates = this.withoutUnservedSubstitutes(planned, resolution.model);
  }

  /**
   * A substitute (a class's equivalent of the model the client named, chosen by routing) that the
   * key's own model listing does not hold is left out: the attempt could only fail with "model not
   * found", after a round trip, on each key of that provider. The model the client named is always
   * tried. Allocates nothing when nothing is left out.
   */
  private withoutUnservedSubstitutes(candidates: RouteCandidate[], model: string): RouteCandidate[] {
    let kept: RouteCandidate[] | undefined;
    for (let index = 0; index < candidates.length; index++) {
      const candidate = candidates[index] as RouteCandidate;
      if (candidate.model !== model && this.dependencies.models.knownNotToServe(candidate.key, candidate.model)) kept ??= candidates.slice(0, index);
      else kept?.push(candidate);
    }
    return kept ?? candidates;
  }

  /**
   * After the route hooks: no candidate left is a 503. Checked after the hooks, so a policy that
   * removed a team's keys or models can say why (403) instead of the generic answer.
   */
  requireCandidates(context: RequestContext): void {
    if (context.candidates.length === 0) throw this.noCandidates(context, context.resolution?.provider, this.routingFor(context));
  }

  private noCandidates(context: RequestContext, provider: string | undefined, routing: RoutingOptions): KeywayError {
    const held = provider === undefined ? [] : (context.keys?.account.get(provider) ?? []);
    let detail: string;
    let retryAfterSeconds: number | undefined;
    if (provider === undefined) detail = `No provider can serve '${context.request.model}' with the keys this account may use.`;
    else if (held.length === 0 && useByokHeader(context.headers.get('x-use-byok')) === false) {
      // The account's own keys were set aside by the client, not missing: say which keys were looked for.
      detail = `X-Use-BYOK: false asks for the platform's keys only, and the platform has no ${provider} key; send X-Use-BYOK: true (or no header) to use this account's keys.`;
    } else if (held.length === 0) {
      detail = `No ${provider} provider key is configured for this account; add one with POST /v1/providers/keys${routing.fallback_to_parrotrouter ? '' : ' (or allow platform keys with routing.fallback_to_parrotrouter)'}.`;
    } else if (held.every((key) => key.status === 'active' && this.dependencies.health.unavailableReason(key) === undefined)) {
      // Every key is usable: the routing planned none of them (a provider_order without this provider).
      const order = routing.provider_order === undefined ? '' : ` (routing.provider_order: ${routing.provider_order.join(', ')})`;
      detail = `The request's routing${order} planned none of this account's ${provider} keys, and no other provider it allows serves '${context.request.model}'.`;
    } else {
      // Say why (health check, refused key), not the stored status, which stays `active` for a disabled provider.
      const reasons = held.map((key) => this.dependencies.health.unavailableReason(key) ?? { reason: `key ${key.id} is ${key.status}` });
      const waits = reasons.map((entry) => entry.retryAfterSeconds).filter((seconds): seconds is number => seconds !== undefined);
      retryAfterSeconds = waits.length > 0 ? Math.min(...waits) : undefined;
      detail = `Every ${provider} provider key of this account is unavailable: ${[...new Set(reasons.map((entry) => entry.reason))].join('; ')}.`;
    }
    return new KeywayError('no_provider_available', { detail }, { retryAfterSeconds, extra: provider === undefined ? {} : { provider } });
  }
}
