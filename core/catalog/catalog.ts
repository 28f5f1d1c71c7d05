// The model catalog: list prices and limits per model, from LiteLLM's MIT-licensed table
// (core/data/model-prices.json, embedded by import so it ships inside the single binary).

import catalogFile from './model-prices.json' with { type: 'json' };

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

/** LiteLLM's provider names, in Keyway's terms. */
const PROVIDER_NAMES: Record<string, string> = {
  openai: 'openai',
  anthropic: 'anthropic',
  gemini: 'google',
  cohere: 'cohere',
  cohere_chat: 'cohere',
  perplexity: 'perplexity',
  mistral: 'mistral',
  deepseek: 'deepseek',
  groq: 'groq',
  together_ai: 'together',
};

const PREFIXES = ['gemini/', 'perplexity/', 'cohere/', 'mistral/', 'deepseek/', 'groq/', 'together_ai/'];

function stripPrefix(name: string): string {
  for (const prefix of PREFIXES) if (name.startsWith(prefix)) return name.slice(prefix.length);
  return name;
}

function toModelInfo(name: string, entry: CatalogEntry, provider: string): ModelInfo {
  return {
    provider,
    model: stripPrefix(name),
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

  constructor(entries: Record<string, CatalogEntry>) {
    for (const [name, entry] of Object.entries(entries)) {
      const provider = PROVIDER_NAMES[entry.litellm_provider ?? ''];
      if (provider === undefined) continue;
      this.add(toModelInfo(name, entry, provider));
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

let sharedCatalog: ModelCatalog | undefined;

export function defaultCatalog(): ModelCatalog {
  sharedCatalog ??= new ModelCatalog((catalogFile as unknown as { models: Record<string, CatalogEntry> }).models);
  return sharedCatalog;
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
