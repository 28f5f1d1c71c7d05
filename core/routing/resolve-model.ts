import type { ModelCatalog } from '../catalog/catalog.ts';
import { closestNames } from '../closest-names.ts';
import { echoed, KeywayError } from '../errors.ts';
import type { ReportedModels } from './reported-models.ts';
import type { ModelResolution, ProviderAdapter, ResolvedKeys } from '../spec/plugin.ts';
import { PLATFORM_NAMES } from '../spec/strategy.ts';

export interface ModelResolverDependencies {
  providers: ReadonlyMap<string, ProviderAdapter>;
  catalog: ModelCatalog;
  models: ReportedModels;
}

/**
 * Picks the provider a model name selects: an explicit `provider` field or `provider/model` name
 * (LiteLLM's provider names too: `gemini/…`) first, then the catalog, then what the account's keys report, then provider name patterns.
 * Where several providers match, the ones the account holds keys for win; a tie is an error.
 */
export function resolveModel(
  dependencies: ModelResolverDependencies,
  accountId: string,
  keys: ResolvedKeys,
  model: string,
  providerField: string | undefined,
): ModelResolution {
  const { providers } = dependencies;
  const slash = model.indexOf('/');
  const prefixed = slash > 0 ? providerOfPrefix(providers, model.slice(0, slash)) : undefined;
  if (providerField !== undefined) {
    if (!providers.has(providerField)) throw unknownProvider('provider', providerField, providers);
    const named = prefixed === providerField ? model.slice(slash + 1) : model;
    return { provider: providerField, model: withoutOwnPrefix(providers.get(providerField), named), explicit: true };
  }
  if (prefixed !== undefined) return { provider: prefixed, model: withoutOwnPrefix(providers.get(prefixed), model.slice(slash + 1)), explicit: true };
  const declared = declaredPrefixOwner(providers, model);
  if (declared !== undefined) return { ...declared, explicit: true };
  if (slash > 0 && PLATFORM_NAMES.has(model.slice(0, slash))) return { provider: undefined, model: model.slice(slash + 1), explicit: false };
  const matches = candidateProviders(dependencies, accountId, model);
  if (matches.length === 1) return { provider: matches[0], model, explicit: false };
  if (matches.length > 1) {
    const held = matches.filter((provider) => (keys.account.get(provider)?.length ?? 0) > 0);
    if (held.length === 1) return { provider: held[0], model, explicit: false };
    const options = (held.length > 1 ? held : matches).map((provider) => `${provider}/${model}`);
    throw new KeywayError(
      'model_not_found',
      { detail: `The model '${echoed(model)}' is served by several providers; name one of: ${options.join(', ')}.` },
      { param: 'model', extra: { candidates: options } },
    );
  }
  const suggestions = closestNames(model, allKnownNames(dependencies, accountId));
  // A name no list knows yet (a fine-tune made since the key's list was read, a new model) still
  // reaches its provider when the request names it.
  const hint =
    suggestions.length > 0
      ? ` Close matches: ${suggestions.join(', ')}.`
      : ` If a provider serves it, name that provider: as provider/${echoed(model)} or with the X-Provider header.`;
  throw new KeywayError(
    'model_not_found',
    { detail: `The model '${echoed(model)}' is not known to Keyway or to any provider key of this account.${hint}` },
    { param: 'model', extra: { suggestions } },
  );
}

type NameForms = Pick<ProviderAdapter, 'modelNameForms'>;

/** The name without the prefix its provider's own SDKs write (`models/gemini-2.5-flash` for Google). */
function withoutOwnPrefix(adapter: NameForms | undefined, model: string): string {
  const prefix = adapter?.modelNameForms?.prefixes?.find((candidate) => model.startsWith(candidate) && model.length > candidate.length);
  return prefix === undefined ? model : model.slice(prefix.length);
}

/** The provider whose manifest declares the name's prefix as its own (Google's `models/`), with the bare name. */
function declaredPrefixOwner(providers: ReadonlyMap<string, NameForms>, model: string): { provider: string; model: string } | undefined {
  for (const [name, adapter] of providers) {
    const bare = withoutOwnPrefix(adapter, model);
    if (bare !== model) return { provider: name, model: bare };
  }
  return undefined;
}

/** Per set of loaded providers: the other names LiteLLM gives each (`gemini` → google). Built once. */
const prefixAliases = new WeakMap<ReadonlyMap<string, Pick<ProviderAdapter, 'catalogAliases'>>, ReadonlyMap<string, string>>();

function aliasTable(providers: ReadonlyMap<string, Pick<ProviderAdapter, 'catalogAliases'>>): ReadonlyMap<string, string> {
  let table = prefixAliases.get(providers);
  if (table !== undefined) return table;
  const built = new Map<string, string>();
  for (const [name, adapter] of providers)
    for (const alias of adapter.catalogAliases?.providers ?? []) if (!providers.has(alias) && !built.has(alias)) built.set(alias, name);
  prefixAliases.set(providers, (table = built));
  return table;
}

/**
 * The loaded provider a `prefix/model` name's prefix names: its own name (`google/gemini-2.5-pro`),
 * or a name LiteLLM gives it, which its manifest lists as `catalogAliases.providers`
 * (`gemini/gemini-2.5-pro`, `cohere_chat/command-r`, `together_ai/…`), so model names written for
 * LiteLLM route unchanged (QA14 migrator 13). A loaded provider's own name always wins.
 */
export function providerOfPrefix(providers: ReadonlyMap<string, Pick<ProviderAdapter, 'catalogAliases'>>, prefix: string): string | undefined {
  return providers.has(prefix) ? prefix : aliasTable(providers).get(prefix);
}

/** The 400 for a provider name no loaded provider plugin answers to, naming where it was and the known ones. */
export function unknownProvider(param: string, name: string, providers: ReadonlyMap<string, unknown>, also = ''): KeywayError {
  return new KeywayError('invalid_field', { param, detail: `unknown provider '${echoed(name)}'; known providers: ${[...providers.keys()].join(', ')}${also}` });
}

/**
 * `routing.provider_order` holds loaded providers' names and the platform names (`parrotrouter`,
 * `platform`), nothing else: an unknown name is refused as `provider` is, naming its index, rather than
 * skipped (which silently drops a fallback) or left to answer a 503 that blames the account's keys.
 */
export function checkProviderOrder(order: readonly string[] | undefined, providers: ReadonlyMap<string, unknown>): void {
  for (const [index, name] of (order ?? []).entries()) {
    if (!providers.has(name) && !PLATFORM_NAMES.has(name))
      throw unknownProvider(`routing.provider_order[${index}]`, name, providers, ` (or ${[...PLATFORM_NAMES].join(' or ')} for the platform's keys)`);
  }
}

/**
 * `routing.cost_weights` names loaded providers only, as `provider_order` does: a misspelt name
 * (`opanai`) would otherwise drop the discount it carries without a word. The platform names are not
 * weights' business (a weight prices the account's own keys), so they are refused too.
 */
export function checkCostWeights(weights: Readonly<Record<string, unknown>> | undefined, providers: ReadonlyMap<string, unknown>): void {
  if (weights === undefined) return;
  for (const name of Object.keys(weights)) if (!providers.has(name)) throw unknownProvider(`routing.cost_weights.${name}`, name, providers);
}

/**
 * The providers a model name selects without a `provider` field: its `provider/` prefix, else the
 * catalog, name patterns, declared name forms and the account's reported models. Empty for a name none of them knows.
 */
export function providersSelecting(dependencies: ModelResolverDependencies, accountId: string, model: string): string[] {
  const slash = model.indexOf('/');
  if (slash > 0) {
    const prefix = model.slice(0, slash);
    const prefixed = providerOfPrefix(dependencies.providers, prefix);
    if (prefixed !== undefined) return [prefixed];
    if (PLATFORM_NAMES.has(prefix)) return providersSelecting(dependencies, accountId, model.slice(slash + 1));
    const declared = declaredPrefixOwner(dependencies.providers, model);
    if (declared !== undefined) return [declared.provider];
  }
  return candidateProviders(dependencies, accountId, model);
}

/**
 * Exact names before name patterns: the catalog's entries, then the models the account's keys report
 * (what `GET /v1/models` lists), and only then the providers' patterns. A pattern is a guess about a
 * provider's naming (`text-embedding-*`) that can match another provider's model (Google's
 * `text-embedding-004`); a key that lists the name says who serves it. Several keys' providers listing
 * one name are narrowed by the patterns when that leaves some.
 */
function candidateProviders(dependencies: ModelResolverDependencies, accountId: string, model: string): string[] {
  const fromCatalog = dependencies.catalog
    .providersOf(model)
    .map((info) => info.provider)
    .filter((provider) => dependencies.providers.has(provider));
  if (fromCatalog.length > 0) return [...new Set(fromCatalog)];
  const reporting = dependencies.models.providersReporting(accountId, model);
  if (reporting.length === 1) return reporting;
  const fromPatterns: string[] = [];
  for (const [name, adapter] of dependencies.providers) if (adapter.modelPatterns.some((pattern) => pattern.test(model))) fromPatterns.push(name);
  if (reporting.length === 0) return fromPatterns.length > 0 ? fromPatterns : derivedNameProviders(dependencies, model);
  const both = reporting.filter((provider) => fromPatterns.includes(provider));
  return both.length > 0 ? both : reporting;
}

function* allKnownNames(dependencies: ModelResolverDependencies, accountId: string): Generator<string> {
  yield* dependencies.catalog.names();
  for (const models of dependencies.models.modelsOf(accountId).values()) yield* models;
}

/**
 * The providers whose manifest declares a derived name shape the name has (OpenAI's fine-tunes,
 * `ft:gpt-4o-mini-2024-07-18:org:suffix:id`) and who serve its base model, by the catalog or their
 * patterns: a fine-tune made since the key's model list was read still finds its provider.
 */
function derivedNameProviders(dependencies: ModelResolverDependencies, model: string): string[] {
  const found: string[] = [];
  for (const [name, adapter] of dependencies.providers) {
    for (const pattern of adapter.modelNameForms?.derived ?? []) {
      const base = pattern.exec(model)?.[1];
      if (base === undefined || base === '') continue;
      const served =
        dependencies.catalog.providersOf(base).some((info) => info.provider === name) || adapter.modelPatterns.some((candidate) => candidate.test(base));
      if (served) {
        found.push(name);
        break;
      }
    }
  }
  return found;
}
