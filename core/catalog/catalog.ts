// The model catalog: list prices and limits per model, from LiteLLM's MIT-licensed table
// (model-prices.json, embedded by import so it ships inside the single binary). Which of LiteLLM's
// provider names is which Keyway provider comes from the provider manifests (`catalogAliases`).

import type { ProviderAdapter } from '../spec/provider.ts';
import catalogFile from './model-prices.json' with { type: 'json' };

/** How a provider appears in LiteLLM's table: its `litellm_provider` names and model-name prefixes. */
export interface CatalogAliases {
  providers: readonly string[];
  modelPrefixes?: readonly string[];
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
  cacheWriteCostPerToken: number | undefined;
  maxInputTokens: number | undefined;
  maxOutputTokens: number | undefined;
  /** Perplexity's per-request search fee by context size. */
  searchCostPerQuery: Record<string, number> | undefined;
}

interface CatalogEntry {
  litellm_provider?: string;
  mode?: string;
  input_cost_per_token?: number;
  output_cost_per_token?: number;
  cache_read_input_token_cost?: number;
  cache_creation_input_token_cost?: number;
  max_input_tokens?: number;
  max_output_tokens?: number;
  max_tokens?: number;
  search_context_cost_per_query?: Record<string, number>;
}

function stripPrefix(name: string, prefixes: readonly string[]): string {
  for (const prefix of prefixes) if (name.startsWith(prefix)) return name.slice(prefix.length);
  return name;
}

function toModelInfo(name: string, entry: CatalogEntry, provider: string, prefixes: readonly string[]): ModelInfo {
  return {
    provider,
    model: stripPrefix(name, prefixes),
    mode: entry.mode ?? 'chat',
    inputCostPerToken: entry.input_cost_per_token ?? 0,
    outputCostPerToken: entry.output_cost_per_token ?? 0,
    cacheReadCostPerToken: entry.cache_read_input_token_cost,
    cacheWriteCostPerToken: entry.cache_creation_input_token_cost,
    maxInputTokens: entry.max_input_tokens,
    maxOutputTokens: entry.max_output_tokens ?? entry.max_tokens,
    searchCostPerQuery: entry.search_context_cost_per_query
      ? Object.fromEntries(Object.entries(entry.search_context_cost_per_query).map(([key, value]) => [key.replace('search_context_size_', ''), value]))
      : undefined,
  };
}

export class ModelCatalog {
  /** `provider/model` → info. */
  private readonly byQualifiedName = new Map<string, ModelInfo>();
  /** bare model name → the providers that list it. */
  private readonly byBareName = new Map<string, ModelInfo[]>();

  constructor(entries: Record<string, CatalogEntry>, aliases: ReadonlyMap<string, CatalogAliases> = new Map()) {
    const byCatalogName = new Map<string, { provider: string; prefixes: readonly string[] }>();
    for (const [provider, alias] of aliases) for (const name of alias.providers) byCatalogName.set(name, { provider, prefixes: alias.modelPrefixes ?? [] });
    for (const [name, entry] of Object.entries(entries)) {
      const target = byCatalogName.get(entry.litellm_provider ?? '');
      if (target === undefined) continue;
      this.add(toModelInfo(name, entry, target.provider, target.prefixes));
    }
  }

  add(info: ModelInfo): void {
    const qualified = `${info.provider}/${info.model}`;
    if (this.byQualifiedName.has(qualified)) return;
    this.byQualifiedName.set(qualified, info);
    const list = this.byBareName.get(info.model);
    if (list) list.push(info);
    else this.byBareName.set(info.model, [info]);
  }

  get(provider: string, model: string): ModelInfo | undefined {
    return this.byQualifiedName.get(`${provider}/${model}`);
  }

  /** The providers whose catalog entries carry this bare name. */
  providersOf(model: string): readonly ModelInfo[] {
    return this.byBareName.get(model) ?? [];
  }

  names(): IterableIterator<string> {
    return this.byBareName.keys();
  }
}

const shippedEntries = (): Record<string, CatalogEntry> => (catalogFile as unknown as { models: Record<string, CatalogEntry> }).models;
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

/** The shipped catalog for the loaded providers, from their manifests' `catalogAliases`. */
export function catalogFor(providers: ReadonlyMap<string, Pick<ProviderAdapter, 'catalogAliases'>>): ModelCatalog {
  const aliases = new Map<string, CatalogAliases>();
  for (const [name, adapter] of providers) if (adapter.catalogAliases !== undefined) aliases.set(name, adapter.catalogAliases);
  return shippedCatalog(aliases);
}

/** Levenshtein distance, for "did you mean" suggestions on unknown model names. */
export function editDistance(left: string, right: string): number {
  const previous = Array.from({ length: right.length + 1 }, (_unused, index) => index);
  for (let row = 1; row <= left.length; row++) {
    let diagonal = previous[0] as number;
    previous[0] = row;
    for (let column = 1; column <= right.length; column++) {
      const above = previous[column] as number;
      const cost = left[row - 1] === right[column - 1] ? 0 : 1;
      previous[column] = Math.min(above + 1, (previous[column - 1] as number) + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return previous[right.length] as number;
}

export function closestNames(name: string, candidates: Iterable<string>, limit = 5): string[] {
  const scored: Array<{ candidate: string; distance: number }> = [];
  const seen = new Set<string>();
  for (const candidate of candidates) {
    if (seen.has(candidate)) continue;
    seen.add(candidate);
    const distance = candidate.includes(name) || name.includes(candidate) ? Math.abs(candidate.length - name.length) * 0.5 : editDistance(name, candidate);
    if (distance <= Math.max(3, name.length / 3)) scored.push({ candidate, distance });
  }
  scored.sort((left, right) => left.distance - right.distance || left.candidate.localeCompare(right.candidate));
  return scored.slice(0, limit).map((entry) => entry.candidate);
}
