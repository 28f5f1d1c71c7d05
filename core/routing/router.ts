// The route stage: model name → provider → ordered candidates (provider, model, key), by the
// request's strategy, over the keys the caller may use and what health says is available.

import type { ModelCatalog } from '../catalog/catalog.ts';
import type { ConfigSnapshots } from '../credentials/snapshot.ts';
import { invalidField, KeywayError } from '../errors.ts';
import { isKeyMaterial, KEY_MATERIAL_RULE } from '../spec/key-material.ts';
import type {
  ModelFilter,
  ModelResolution,
  ProviderAdapter,
  ResolvedKeys,
  ProviderKeyRecord,
  RequestContext,
  RouteCandidate,
  RoutingStrategy,
} from '../spec/plugin.ts';
import { PLATFORM_NAMES } from '../spec/strategy.ts';
import type { RoutingOptions } from '../spec/vocabulary.ts';
import type { HealthMonitor, UnavailableReason } from './health/monitor.ts';
import { healthPolicyOf } from './health/probes.ts';
import type { ModelClass, ModelClassOverrides, ModelClassTable } from './model-classes.ts';
import type { ReportedModels } from './reported-models.ts';
import { checkCostWeights, checkProviderOrder, providersSelecting, resolveModel, unknownProvider, type ModelResolverDependencies } from './resolve-model.ts';
import { clientKeys } from '../credentials/client-keys.ts';
import { modelPredicate } from './model-predicate.ts';

const DEFAULT_STRATEGY = 'byok_preferred';
/**
 * A `provider_order` with no `strategy` in the same object asks for that order of fallbacks (LiteLLM's
 * fallbacks, OpenRouter's provider order): `fallback_chain`, which reads it. It was ignored (QA seed F2).
 */
function withOrderStrategy(routing: RoutingOptions | undefined): RoutingOptions | undefined {
  return routing?.provider_order !== undefined && routing.strategy === undefined ? { ...routing, strategy: 'fallback_chain' } : routing;
}
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
  /**
   * The plugins' model filters (what `GET /v1/models` lists): a request for a model class goes to a
   * provider whose model of the class the caller may use. None: every model is usable.
   */
  modelFilters?: ReadonlyArray<{ value: ModelFilter }>;
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

/** A 503's detail with what policies said about the keys they passed over (RequestContext.passedOver). */
function withPassedOver(detail: string, context: RequestContext): string {
  return context.passedOver === undefined || context.passedOver.length === 0 ? detail : `${detail} ${context.passedOver.join(' ')}`;
}

/** Whether the routing may use the platform's keys at all: allowed, or named in `provider_order`, and not refused by `use_byok_only`. */
function platformAllowed(routing: RoutingOptions): boolean {
  return (
    routing.use_byok_only !== true && (routing.fallback_to_parrotrouter === true || (routing.provider_order ?? []).some((entry) => PLATFORM_NAMES.has(entry)))
  );
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

  /** The catalog's output limit of a provider's model, in tokens; undefined when the catalog does not say. */
  outputLimitOf(provider: string, model: string): number | undefined {
    return this.dependencies.catalog.get(provider, model)?.maxOutputTokens;
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

  /**
   * Each provider's model of the request's class (the class the client named, else the model's);
   * cached per table, so routing allocates nothing.
   */
  private equivalentsFor(table: ModelClassTable, resolution: ModelResolution): ReadonlyMap<string, string> | undefined {
    const { provider, model, modelClass: className } = resolution;
    let cache = this.equivalentsCache.get(table);
    if (cache === undefined) this.equivalentsCache.set(table, (cache = new Map()));
    const key = className === undefined ? `${provider ?? ''}\u0000${model}` : `${provider ?? ''}\u0000${model}\u0000${className}`;
    if (cache.has(key)) return cache.get(key);
    const modelClass = className === undefined ? table.classOf(model) : table.named(className);
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
    // Without X-Provider-Key the header is checked all the same, and names the provider as the
    // `provider` field does: it used to be ignored, so `X-Provider: acme`, or `X-Provider: google`
    // for gpt-4o, was served by OpenAI without a word (QA14 migrator 5).
    const named = this.providerHeader(context);
    if (named !== undefined) this.holdToNamedProvider(context, named, false);
    const keys = this.dependencies.snapshots.keysFor(context.principal.accountId);
    // `X-Use-BYOK: false` asks for the operator's keys: an explicit permission, never a silent one.
    if (useByok === false) {
      this.refuseByokOnly(context);
      context.keys = { account: new Map(), platform: keys.platform };
      context.request.routing = { ...context.request.routing, fallback_to_parrotrouter: true };
    } else context.keys = keys;
  }

  /**
   * `X-Use-BYOK: false` skips the account's keys for the platform's, which `use_byok_only` forbids: the
   * request could only fail, and its 503 ("the platform has no openai key") named neither (QA seed L1).
   */
  private refuseByokOnly(context: RequestContext): void {
    if (this.routingFor(context).use_byok_only !== true) return;
    const source =
      context.request.routing?.use_byok_only === true
        ? "the request's routing.use_byok_only: true"
        : "the account's default routing (PUT /v1/settings/routing) sets routing.use_byok_only: true, which";
    throw invalidField(
      'X-Use-BYOK',
      `X-Use-BYOK: false asks for the platform's keys only, and ${source} forbids them; send X-Use-BYOK: true (or no header) to use this account's keys, or routing.use_byok_only: false`,
    );
  }

  /** `X-Provider`, when sent: a loaded provider's name, else a 400 naming the header and the known providers. */
  private providerHeader(context: RequestContext): string | undefined {
    const named = context.headers.get('x-provider')?.trim();
    if (named === undefined || named === '') return undefined;
    if (!this.dependencies.providers.has(named)) throw unknownProvider('X-Provider', named, this.dependencies.providers);
    return named;
  }

  private clientKeyProvider(context: RequestContext): string {
    const named = this.providerHeader(context);
    if (named !== undefined) {
      this.holdToNamedProvider(context, named, true);
      return named;
    }
    const { model, provider } = context.request;
    const empty = { account: new Map(), platform: new Map() };
    const needsProvider = () =>
      new KeywayError('invalid_field', {
        param: 'X-Provider',
        detail: 'X-Provider-Key needs the provider it belongs to: send X-Provider or name the model as provider/model',
      });
    let resolution: ModelResolution;
    try {
      resolution = resolveModel(this.resolver, context.principal.accountId, empty, model, provider);
    } catch (error) {
      // A model class (`fast`) has a model on several providers: the key's provider must be named.
      if (this.isClassName(context.principal.accountId, model)) throw needsProvider();
      throw error;
    }
    if (resolution.provider === undefined) throw needsProvider();
    return resolution.provider;
  }

  /**
   * `X-Provider` says whose key `X-Provider-Key` is, or without one which provider serves; it never
   * sends the model to another provider. A model that only other providers serve (`gpt-4` with
   * `X-Provider: google`), or a `provider` field that names another, is a 400 naming the conflict:
   * the provider could not serve it, and answering with the model's own provider would serve what the
   * client did not choose (with a client key, spend a stored key it did not send). Otherwise the header
   * decides the provider as the `provider` field would (a name no provider is known to serve, such as
   * a fine-tune, goes to it).
   */
  private holdToNamedProvider(context: RequestContext, named: string, withClientKey: boolean): void {
    const { model, provider } = context.request;
    if (provider !== undefined && provider !== named)
      throw new KeywayError('invalid_field', {
        param: 'X-Provider',
        detail: `X-Provider names ${named} but the request's provider field names ${provider}; ${withClientKey ? 'X-Provider-Key is used for its own provider only' : 'a request has one provider'}, so send one of them`,
      });
    if (provider !== undefined) return;
    const serving = providersSelecting(this.resolver, context.principal.accountId, model);
    if (serving.length > 0 && !serving.includes(named)) {
      const others = `${serving.join(', ')} ${serving.length === 1 ? 'does' : 'do'}`;
      const alternative = this.askForModelOf(context, named, model);
      throw new KeywayError('invalid_field', {
        param: 'X-Provider',
        detail: withClientKey
          ? `${named} does not serve the model '${model}' (${others}). X-Provider says whose key X-Provider-Key is, and Keyway never sends that key ` +
            `another provider's model: send X-Provider: ${serving[0]} with a key of that provider, or ${alternative}`
          : `${named} does not serve the model '${model}' (${others}). X-Provider names the provider of the model asked for, and Keyway never sends a ` +
            `model to another provider: leave the header out, send X-Provider: ${serving[0]}, or ${alternative}`,
      });
    }
    context.request.provider = named;
  }

  /** The request's routing options over the account's defaults. */
  routingFor(context: RequestContext): RoutingOptions {
    const requested = withOrderStrategy(context.request.routing);
    const account = this.dependencies.snapshots.current.accounts.get(context.principal.accountId);
    const accountDefault = withOrderStrategy(account?.settings.routing as RoutingOptions | undefined);
    if (requested === undefined) return accountDefault ?? {};
    return accountDefault === undefined ? requested : { ...accountDefault, ...requested };
  }

  private resolutionFor(context: RequestContext, table: ModelClassTable, keys: ResolvedKeys, routing: RoutingOptions): ModelResolution {
    const earlier = peeked.get(context);
    const { model, provider } = context.request;
    const accountId = context.principal.accountId;
    // A peeked resolution holds while the request names the same model and provider over the same
    // keys (X-Use-BYOK: false narrows them, which can change how a tie between providers breaks).
    let resolution: ModelResolution;
    if (earlier !== undefined && earlier.model === model && earlier.providerField === provider && earlier.accountKeys === keys.account)
      resolution = earlier.resolution;
    else {
      try {
        resolution = resolveModel(this.resolver, accountId, keys, model, provider);
      } catch (error) {
        const requested = error instanceof KeywayError && error.code === 'model_not_found' ? this.classRequest(context, table, keys, routing) : undefined;
        if (requested === undefined) throw error;
        return requested;
      }
    }
    return resolution.explicit ? this.namedProviderClassModel(table, resolution, accountId) : resolution;
  }

  /** Whether a name no provider is known to serve names a model class of the account (or a member of one). */
  private isClassName(accountId: string, model: string): boolean {
    return this.modelClassesFor(accountId).classOf(model) !== undefined && providersSelecting(this.resolver, accountId, model).length === 0;
  }

  /**
   * A name no provider is known to serve that is a model class's name (`flagship`) or one of its
   * `members` (`my-fast-model`) asks for the class: its model on the first provider, in the order of the
   * class's `models`, that this request holds a usable key for (the account's; else the platform's,
   * when the routing allows them) and whose model of the class the caller may use (the same rule as
   * `GET /v1/models`). The strategy then plans as for that model: `byok_preferred` and `direct` stay on
   * that provider, `fallback_chain` and `cost_optimized` take in the class's other providers. With no
   * such provider, the class's first one (its 503 or 403 says why). Undefined for any other name.
   */
  private classRequest(context: RequestContext, table: ModelClassTable, keys: ResolvedKeys, routing: RoutingOptions): ModelResolution | undefined {
    const { model } = context.request;
    const accountId = context.principal.accountId;
    // Classes name chat models: an embedding request for `small` would reach a chat model and fail
    // upstream, naming a model the client never sent (QA14 re-verification N2).
    if (context.endpoint === 'embeddings') return undefined;
    if (context.request.provider !== undefined || !this.isClassName(accountId, model)) return undefined;
    const modelClass = table.classOf(model) as ModelClass;
    const served = Object.entries(modelClass.models).filter(([provider, name]) => name !== '' && this.dependencies.providers.has(provider));
    const first = served[0];
    if (first === undefined) {
      throw new KeywayError(
        'model_not_found',
        {
          detail: `'${model}' names the model class '${modelClass.name}', which has no model of a loaded provider; give it one with PUT /v1/settings/model-classes.`,
        },
        { param: 'model', extra: { model_class: modelClass.name } },
      );
    }
    const allowed = modelPredicate(this.dependencies.modelFilters ?? [], { principal: context.principal, headers: context.headers });
    const usable = (pool: readonly ProviderKeyRecord[] | undefined, name: string) =>
      pool?.some((key) => this.isAvailable(key) && !this.dependencies.models.knownNotToServe(key, name)) === true;
    const pick = (pools: ResolvedKeys['account']) =>
      served.find(([provider, name]) => (allowed === undefined || allowed(provider, name)) && usable(pools.get(provider), name));
    const platform = platformAllowed(routing);
    const [provider, chosen] = pick(keys.account) ?? (platform ? pick(keys.platform) : undefined) ?? first;
    return { provider, model: chosen, explicit: false, modelClass: modelClass.name };
  }

  /**
   * A request that names its provider (`anthropic/fast`, the `provider` field, `X-Provider` with
   * `X-Provider-Key`) and, as the model, a class no provider is known to serve by that name, gets the
   * class's model for that provider. Any other name is sent as it is (a fine-tune, a new model).
   */
  private namedProviderClassModel(table: ModelClassTable, resolution: ModelResolution, accountId: string): ModelResolution {
    const provider = resolution.provider;
    if (provider === undefined) return resolution;
    const modelClass = table.classOf(resolution.model);
    const model = modelClass?.models[provider];
    if (modelClass === undefined || model === undefined || model === '' || model === resolution.model) return resolution;
    // A catalog model of that provider (`openai/gpt-4o`, a flagship member) is that model: one lookup.
    if (this.dependencies.catalog.get(provider, resolution.model) !== undefined) return resolution;
    if (providersSelecting(this.resolver, accountId, resolution.model).length > 0) return resolution;
    return { provider, model, explicit: true, modelClass: modelClass.name };
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
    const table = this.modelClassesFor(context.principal.accountId);
    const resolution = this.resolutionFor(context, table, keys, routing);
    if (resolution.explicit && resolution.provider !== undefined) this.refuseModelElsewhere(context, resolution.provider, resolution.model, keys);
    context.resolution = resolution;
    const equivalents = this.equivalentsFor(table, resolution);
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
    // A class request named no model: every candidate is routing's choice.
    context.candidates = this.withoutUnservedSubstitutes(planned, resolution.modelClass === undefined ? resolution.model : undefined);
  }

  /**
   * A provider named for a model the catalog gives only to other providers (`provider: "google"` with
   * `gpt-4o`, or `google/gpt-4o`) is a 400 before any call, when every key of it the request may use
   * lists its models and none lists this one: the call could only fail with "model not found" after a
   * round trip (QA14 migrator 13). A key whose listing is unknown, or that lists the model (an
   * OpenAI-compatible proxy serving other providers' models, a fine-tune), keeps the request going:
   * the refusal rests on what the provider itself says it serves, never on the catalog alone.
   */
  private refuseModelElsewhere(context: RequestContext, provider: string, model: string, keys: ResolvedKeys): void {
    const listed = this.dependencies.catalog.providersOf(model);
    // The common case, the provider's own model, costs one lookup.
    if (listed.length === 0 || listed.some((info) => info.provider === provider)) return;
    const owners = this.ownersOf(listed);
    if (owners.length === 0) return;
    const usable = [...(keys.account.get(provider) ?? []), ...(keys.platform.get(provider) ?? [])];
    if (usable.length === 0 || !usable.every((key) => this.dependencies.models.knownNotToServe(key, model))) return;
    const keyId = context.defaultModelKeyId;
    if (keyId !== undefined) {
      // The client named no model: the key's setting chose it, and only changing that setting (or naming a model) helps (QA20 seed F4).
      throw new KeywayError('invalid_field', {
        param: 'model',
        detail:
          `The request names no model, so Keyway used the settings.default_model '${model}' of ${provider} key ${keyId}; ${provider} does not serve it: the model catalog gives it to ${owners.join(', ')}, and no ${provider} key of this account lists it. ` +
          `Send model, or set that key's default_model to ${this.askForModelOf(context, provider, model).replace(/^ask for /, '')}`,
      });
    }
    const param = context.request.provider === undefined ? 'model' : 'provider';
    const instead = param === 'model' ? `ask for ${owners[0]}/${model}` : `leave provider out, send provider: ${owners[0]}`;
    throw new KeywayError('invalid_field', {
      param,
      detail:
        `${provider} does not serve the model '${model}': the model catalog gives it to ${owners.join(', ')}, and no ${provider} key of this account lists it. ` +
        `Keyway sends a model only to the provider named: ${instead}, or ${this.askForModelOf(context, provider, model)}`,
    });
  }

  /** The way out of a refusal that names another provider's model: that provider's own model of the same class. */
  private askForModelOf(context: RequestContext, provider: string, model: string): string {
    const example = this.modelClassesFor(context.principal.accountId).classOf(model)?.models[provider];
    // Provider ids are read as spelled ("an openai model", "a google model"), so a leading vowel takes "an".
    const article = /^[aeiou]/i.test(provider) ? 'an' : 'a';
    return `ask for ${article} ${provider} model${example === undefined ? '' : ` (such as ${provider}/${example})`}`;
  }

  /** The loaded providers among a model's catalog entries. */
  private ownersOf(listed: ReturnType<ModelCatalog['providersOf']>): string[] {
    const owners: string[] = [];
    for (const info of listed) if (this.dependencies.providers.has(info.provider) && !owners.includes(info.provider)) owners.push(info.provider);
    return owners;
  }

  /**
   * A substitute (a class's equivalent of the model the client named, chosen by routing) that the
   * key's own model listing does not hold is left out: the attempt could only fail with "model not
   * found", after a round trip, on each key of that provider. The model the client named is always
   * tried (undefined when it named a model class). Allocates nothing when nothing is left out.
   */
  private withoutUnservedSubstitutes(candidates: RouteCandidate[], model: string | undefined): RouteCandidate[] {
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
    const modelClass = context.resolution?.explicit === false ? context.resolution.modelClass : undefined;
    if (modelClass !== undefined) {
      const models = Object.entries(this.modelClassesFor(context.principal.accountId).named(modelClass)?.models ?? {})
        .filter(([name]) => this.dependencies.providers.has(name))
        .map(([name, model]) => `${model} on ${name}`);
      return new KeywayError(
        'no_provider_available',
        {
          detail: `No key this request may use can serve the model class '${modelClass}' (${models.join(', ')}): add a key of one of these providers with POST /v1/providers/keys, or see GET /v1/providers/health for keys that are unavailable.`,
        },
        { extra: { model_class: modelClass } },
      );
    }
    const platform = provider === undefined ? undefined : this.platformPoolFor(context, provider, routing);
    const held = platform ?? (provider === undefined ? [] : (context.keys?.account.get(provider) ?? []));
    const pool = platform === undefined ? 'provider key of this account' : 'platform key';
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
      detail = `The request's routing${order} planned none of ${platform === undefined ? "this account's" : "the platform's"} ${provider} keys, and no other provider it allows serves '${context.request.model}'.`;
    } else {
      // Say why (health check, refused key), not the stored status, which stays `active` for a disabled provider.
      const reasons: UnavailableReason[] = held.map((key) => this.dependencies.health.unavailableReason(key) ?? { reason: `key ${key.id} is ${key.status}` });
      const waits = reasons.map((entry) => entry.retryAfterSeconds).filter((seconds): seconds is number => seconds !== undefined);
      retryAfterSeconds = waits.length > 0 ? Math.min(...waits) : undefined;
      detail = `Every ${provider} ${pool} is unavailable: ${[...new Set(reasons.map((entry) => entry.reason))].join('; ')}.`;
      if (reasons.every((entry) => entry.rejected === true)) return this.keysRejected(context, provider, withPassedOver(detail, context));
    }
    detail = withPassedOver(detail, context);
    return new KeywayError('no_provider_available', { detail }, { retryAfterSeconds, extra: provider === undefined ? {} : { provider } });
  }

  /**
   * The platform's keys of the provider, when they are what this request's routing planned from: the
   * request asks for platform keys only (`X-Use-BYOK: false`, a `provider_order` of platform names
   * alone), or allows them and the account holds none of the provider. Undefined otherwise: the
   * account's keys are then the ones to explain.
   */
  private platformPoolFor(context: RequestContext, provider: string, routing: RoutingOptions): readonly ProviderKeyRecord[] | undefined {
    const platform = context.keys?.platform.get(provider) ?? [];
    if (platform.length === 0 || !platformAllowed(routing)) return undefined;
    const order = routing.provider_order ?? [];
    const platformOnly = order.length > 0 && order.every((entry) => PLATFORM_NAMES.has(entry));
    return platformOnly || (context.keys?.account.get(provider) ?? []).length === 0 ? platform : undefined;
  }

  /**
   * Every key of the provider was refused by it (401/403): a retry within seconds meets the same
   * refusal, so the answer says how the keys come back and carries `x-should-retry: false`, which
   * stops the official SDKs retrying (as for an exhausted quota). Key ids only, never a key.
   */
  private keysRejected(context: RequestContext, provider: string, detail: string): KeywayError {
    const interval = healthPolicyOf(this.dependencies.snapshots, context.principal.accountId).check_interval;
    return new KeywayError(
      'no_provider_available',
      {
        detail:
          `${detail} A refused key is re-checked against ${provider}'s models endpoint every ${interval} s (and on GET /v1/providers) ` +
          'and is back in rotation once it works: fix it at the provider, or replace it with POST /v1/providers/keys.',
      },
      { extra: { provider }, headers: { 'x-should-retry': 'false' } },
    );
  }
}
