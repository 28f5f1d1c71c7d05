// The model catalog: list prices and limits per model, from LiteLLM's MIT-licensed table
// (model-prices.json, embedded by import so it ships inside the single binary). Which of LiteLLM's
// provider names is which Keyway provider comes from the provider manifests (`catalogAliases`).

import type { ProviderAdapter } from '../spec/provider.ts';
import catalogFile from './model-prices.json' with { type: 'json' };

/** How a provider appears in LiteLLM's table: its `litellm_provider` names and model-name prefixes. */
export interface CatalogAliases {
  providers: readonly string[];
  modelPrefixes?: readonly string[];
  /**
   * The provider's per-call fees for its hosted tools (USD per call, by fee name), for every model
   * of the provider: LiteLLM's table does not list them. A model's own `tool_call_costs` (a price
   * file or an operator override) wins name by name.
   */
  toolCallCosts?: Readonly<Record<string, number>>;
}

/** Where a model's effective price comes from: the embedded table, KEYWAY_PRICES_FILE, or an operator override. */
export type PriceSource = 'shipped' | 'file' | 'override';

export const PRICE_SOURCES: readonly PriceSource[] = ['shipped', 'file', 'override'];

/** Rates that change once the prompt exceeds a size (LiteLLM's `*_above_200k_tokens` keys). */
export interface PriceTier {
  /** The tier applies when the prompt (cached parts included) has more tokens than this. */
  aboveInputTokens: number;
  inputCostPerToken?: number;
  outputCostPerToken?: number;
  cacheReadCostPerToken?: number;
  cacheWriteCostPerToken?: number;
  cacheWrite1hCostPerToken?: number;
}

/** A processing tier's rates (`input_cost_per_token_priority`…); a rate it does not name is the standard one. */
export interface ServiceTierRates {
  inputCostPerToken?: number;
  outputCostPerToken?: number;
  cacheReadCostPerToken?: number;
  cacheWriteCostPerToken?: number;
}

export interface ModelInfo {
  /** Keyway's provider name. */
  provider: string;
  /** The name the provider knows the model by (catalog prefixes such as `gemini/` removed). */
  model: string;
  mode: string;
  inputCostPerToken: number;
  outputCostPerToken: number;
  cacheReadCostPerToken: number | undefined;
  /** Cache writes; Anthropic's 5-minute writes. */
  cacheWriteCostPerToken: number | undefined;
  /** Anthropic's 1-hour cache writes (`cache_creation_input_token_cost_above_1hr`). */
  cacheWrite1hCostPerToken: number | undefined;
  /** Reasoning (thinking) tokens, when the provider prices them apart from other output. */
  reasoningCostPerToken: number | undefined;
  /** Retrieved-source tokens the provider bills (Perplexity deep research's `citation_cost_per_token`). */
  citationCostPerToken: number | undefined;
  /** A flat fee on every request (`input_cost_per_request`). */
  requestCostUsd: number | undefined;
  maxInputTokens: number | undefined;
  maxOutputTokens: number | undefined;
  /** Perplexity's per-request search fee by context size (low, medium, high). */
  searchCostPerQuery: Record<string, number> | undefined;
  /** Hosted tools billed per call (USD per call, by fee name: `web_search`, `file_search`…). */
  toolCallCosts: Readonly<Record<string, number>> | undefined;
  /** Rates for long prompts, lowest threshold first. */
  tiers: readonly PriceTier[];
  /**
   * Rates of a processing tier the provider serves a call at on request (OpenAI's `priority` and
   * `flex`: LiteLLM's `*_priority`, `*_flex`), by tier name; a rate a tier does not name is the standard one.
   */
  serviceTiers?: Readonly<Record<string, ServiceTierRates>>;
  source: PriceSource;
  /** The LiteLLM-format fields this info was read from: what an override is merged over. */
  entry: Readonly<CatalogEntry>;
}

/** The price and limit fields of one model, by LiteLLM's names: the table's entries and operator overrides share them. */
export interface PriceFields {
  input_cost_per_token?: number;
  output_cost_per_token?: number;
  cache_read_input_token_cost?: number;
  cache_creation_input_token_cost?: number;
  cache_creation_input_token_cost_above_1hr?: number;
  output_cost_per_reasoning_token?: number;
  citation_cost_per_token?: number;
  input_cost_per_request?: number;
  search_context_cost_per_query?: Record<string, number>;
  /** Keyway's own field: hosted tools billed per call, USD per call by fee name (see CatalogAliases.toolCallCosts). */
  tool_call_costs?: Record<string, number>;
  max_input_tokens?: number;
  max_output_tokens?: number;
}

/** One model in LiteLLM's price table format (model_prices_and_context_window.json). */
export interface CatalogEntry extends PriceFields {
  litellm_provider?: string;
  mode?: string;
  max_tokens?: number;
  [field: string]: unknown;
}

function stripPrefix(name: string, prefixes: readonly string[]): string {
  for (const prefix of prefixes) if (name.startsWith(prefix)) return name.slice(prefix.length);
  return name;
}

const number = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** The rate fields a long-prompt tier may change, by their LiteLLM stem. */
const TIER_FIELDS: ReadonlyArray<[string, keyof Omit<PriceTier, 'aboveInputTokens'>]> = [
  ['input_cost_per_token', 'inputCostPerToken'],
  ['output_cost_per_token', 'outputCostPerToken'],
  ['cache_read_input_token_cost', 'cacheReadCostPerToken'],
  ['cache_creation_input_token_cost', 'cacheWriteCostPerToken'],
  ['cache_creation_input_token_cost_above_1hr', 'cacheWrite1hCostPerToken'],
];

/** `input_cost_per_token_above_200k_tokens` and its siblings, as tiers (processing tiers are `serviceTiers`; batch rates are not used). */
function tiersOf(entry: CatalogEntry): PriceTier[] {
  const tiers = new Map<number, PriceTier>();
  for (const [key, value] of Object.entries(entry)) {
    const match = /^(.+)_above_(\d+)k_tokens$/.exec(key);
    const rate = number(value);
    if (match === null || rate === undefined) continue;
    const field = TIER_FIELDS.find(([stem]) => stem === match[1])?.[1];
    if (field === undefined) continue;
    const threshold = Number(match[2]) * 1000;
    let tier = tiers.get(threshold);
    if (tier === undefined) tiers.set(threshold, (tier = { aboveInputTokens: threshold }));
    tier[field] = rate;
  }
  return [...tiers.values()].sort((left, right) => left.aboveInputTokens - right.aboveInputTokens);
}

/** The rate fields a processing tier may change, by their LiteLLM stem. */
const SERVICE_TIER_FIELDS: ReadonlyArray<[string, keyof ServiceTierRates]> = [
  ['input_cost_per_token', 'inputCostPerToken'],
  ['output_cost_per_token', 'outputCostPerToken'],
  ['cache_read_input_token_cost', 'cacheReadCostPerToken'],
  ['cache_creation_input_token_cost', 'cacheWriteCostPerToken'],
];

/** `input_cost_per_token_priority`, `output_cost_per_token_flex`…, by tier; undefined when the entry has none. */
function serviceTiersOf(entry: CatalogEntry): Record<string, ServiceTierRates> | undefined {
  let tiers: Record<string, ServiceTierRates> | undefined;
  for (const [key, value] of Object.entries(entry)) {
    const match = /^(.+)_(priority|flex)$/.exec(key);
    const rate = number(value);
    if (match === null || rate === undefined) continue;
    const field = SERVICE_TIER_FIELDS.find(([stem]) => stem === match[1])?.[1];
    if (field === undefined) continue;
    tiers ??= {};
    const tier = (tiers[match[2] as string] ??= {});
    tier[field] = rate;
  }
  return tiers;
}

function searchFees(entry: CatalogEntry): Record<string, number> | undefined {
  const table = entry.search_context_cost_per_query;
  if (table === undefined || table === null || typeof table !== 'object') return undefined;
  const fees: Record<string, number> = {};
  for (const [key, value] of Object.entries(table)) {
    const fee = number(value);
    if (fee !== undefined) fees[key.replace('search_context_size_', '')] = fee;
  }
  return fees;
}

function toolCallCosts(entry: CatalogEntry, defaults: Readonly<Record<string, number>> | undefined): Readonly<Record<string, number>> | undefined {
  const own = entry.tool_call_costs;
  if (own === undefined || own === null || typeof own !== 'object') return defaults;
  const costs: Record<string, number> = { ...defaults };
  for (const [key, value] of Object.entries(own)) {
    const fee = number(value);
    if (fee !== undefined) costs[key] = fee;
  }
  return costs;
}

export function toModelInfo(
  name: string,
  entry: CatalogEntry,
  provider: string,
  prefixes: readonly string[],
  source: PriceSource = 'shipped',
  providerToolCallCosts?: Readonly<Record<string, number>>,
): ModelInfo {
  return {
    provider,
    model: stripPrefix(name, prefixes),
    mode: typeof entry.mode === 'string' ? entry.mode : 'chat',
    inputCostPerToken: number(entry.input_cost_per_token) ?? 0,
    outputCostPerToken: number(entry.output_cost_per_token) ?? 0,
    cacheReadCostPerToken: number(entry.cache_read_input_token_cost),
    cacheWriteCostPerToken: number(entry.cache_creation_input_token_cost),
    cacheWrite1hCostPerToken: number(entry.cache_creation_input_token_cost_above_1hr),
    reasoningCostPerToken: number(entry.output_cost_per_reasoning_token),
    citationCostPerToken: number(entry.citation_cost_per_token),
    requestCostUsd: number(entry.input_cost_per_request),
    maxInputTokens: number(entry.max_input_tokens),
    maxOutputTokens: number(entry.max_output_tokens) ?? number(entry.max_tokens),
    searchCostPerQuery: searchFees(entry),
    toolCallCosts: toolCallCosts(entry, providerToolCallCosts),
    tiers: tiersOf(entry),
    serviceTiers: serviceTiersOf(entry),
    source,
    entry,
  };
}

/** A model is priced when its entry names an input or an output rate (a free model names 0). */
export function isPriced(info: ModelInfo): boolean {
  return info.entry.input_cost_per_token !== undefined || info.entry.output_cost_per_token !== undefined || info.entry.input_cost_per_request !== undefined;
}

interface CatalogTables {
  /** `provider/model` → info. */
  byQualifiedName: Map<string, ModelInfo>;
  /** bare model name → the providers that list it. */
  byBareName: Map<string, ModelInfo[]>;
}

/** `ft:<base model>:…`: the base a fine-tune was trained from. */
const FINE_TUNE_BASE = /^ft:([^:]+):/;

export class ModelCatalog {
  private tables: CatalogTables = { byQualifiedName: new Map(), byBareName: new Map() };
  /** Bumped whenever the contents are replaced, so views cached from them know to rebuild. */
  version = 0;

  constructor(entries: Record<string, CatalogEntry> = {}, aliases: ReadonlyMap<string, CatalogAliases> = new Map(), sourceOf?: (name: string) => PriceSource) {
    const byCatalogName = new Map<string, { provider: string; prefixes: readonly string[]; toolCallCosts: CatalogAliases['toolCallCosts'] }>();
    for (const [provider, alias] of aliases) {
      for (const name of alias.providers) byCatalogName.set(name, { provider, prefixes: alias.modelPrefixes ?? [], toolCallCosts: alias.toolCallCosts });
    }
    for (const [name, entry] of Object.entries(entries)) {
      const target = byCatalogName.get(entry.litellm_provider ?? '');
      if (target === undefined) continue;
      this.add(toModelInfo(name, entry, target.provider, target.prefixes, sourceOf?.(name) ?? 'shipped', target.toolCallCosts));
    }
  }

  add(info: ModelInfo): void {
    const qualified = `${info.provider}/${info.model}`;
    if (this.tables.byQualifiedName.has(qualified)) return;
    this.tables.byQualifiedName.set(qualified, info);
    const list = this.tables.byBareName.get(info.model);
    if (list) list.push(info);
    else this.tables.byBareName.set(info.model, [info]);
  }

  /** Adds or replaces (an operator's override wins over the table's entry, in the same place). */
  put(info: ModelInfo): void {
    const qualified = `${info.provider}/${info.model}`;
    const previous = this.tables.byQualifiedName.get(qualified);
    if (previous === undefined) return this.add(info);
    this.tables.byQualifiedName.set(qualified, info);
    const list = this.tables.byBareName.get(info.model) ?? [];
    this.tables.byBareName.set(
      info.model,
      list.map((entry) => (entry === previous ? info : entry)),
    );
  }

  /**
   * Takes the other catalog's contents in one assignment: a request reading prices sees the old table
   * or the new one, never half of each. The other catalog must not be changed afterwards.
   */
  replaceWith(other: ModelCatalog): void {
    this.tables = other.tables;
    this.version++;
  }

  /**
   * A model's entry; for a fine-tune (`ft:<base model>:<organisation>:<suffix>:<id>`) without one of its
   * own, the table's `ft:<base model>` entry, as LiteLLM prices fine-tunes: its file carries those rates,
   * which every fine-tune went without (booked unpriced) until QA20.
   */
  get(provider: string, model: string): ModelInfo | undefined {
    const own = this.tables.byQualifiedName.get(`${provider}/${model}`);
    if (own !== undefined || !model.startsWith('ft:')) return own;
    const base = FINE_TUNE_BASE.exec(model)?.[1];
    return base === undefined ? undefined : this.tables.byQualifiedName.get(`${provider}/ft:${base}`);
  }

  /** The providers whose catalog entries carry this bare name. */
  providersOf(model: string): readonly ModelInfo[] {
    return this.tables.byBareName.get(model) ?? [];
  }

  names(): IterableIterator<string> {
    return this.tables.byBareName.keys();
  }

  /** Every model, in table order. */
  models(): IterableIterator<ModelInfo> {
    return this.tables.byQualifiedName.values();
  }
}

/** The embedded LiteLLM entries (never modified). */
export const shippedEntries = (): Record<string, CatalogEntry> => (catalogFile as unknown as { models: Record<string, CatalogEntry> }).models;
/** Catalogs by alias set: building one reads ~2,000 entries, so each distinct set is built once. */
const catalogs = new Map<string, ModelCatalog>();

/** The shipped catalog as the given providers name themselves in it. */
export function shippedCatalog(aliases: ReadonlyMap<string, CatalogAliases>): ModelCatalog {
  const signature = JSON.stringify([...aliases].sort(([left], [right]) => left.localeCompare(right)));
  let catalog = catalogs.get(signature);
  if (catalog === undefined) {
    catalog = new ModelCatalog(shippedEntries(), aliases);
    catalogs.set(signature, catalog);
  }
  return catalog;
}

/** The loaded providers' `catalogAliases`, from their manifests. */
export function aliasesOf(providers: ReadonlyMap<string, Pick<ProviderAdapter, 'catalogAliases'>>): Map<string, CatalogAliases> {
  const aliases = new Map<string, CatalogAliases>();
  for (const [name, adapter] of providers) if (adapter.catalogAliases !== undefined) aliases.set(name, adapter.catalogAliases);
  return aliases;
}

/**
 * A catalog of its own (its contents can be replaced without touching other gateways in the process)
 * starting with the shipped table for the loaded providers.
 */
export function catalogFor(providers: ReadonlyMap<string, Pick<ProviderAdapter, 'catalogAliases'>>): ModelCatalog {
  const catalog = new ModelCatalog();
  catalog.replaceWith(shippedCatalog(aliasesOf(providers)));
  catalog.version = 0;
  return catalog;
}
