import { unreportedUsage, type OpenAIUsage, type Usage } from '../../core/spec/vocabulary.ts';
import { usageFromOpenAI } from '../openai-compatible/usage.ts';

/** Perplexity's per-request cost breakdown in USD, as it reports it. */
export interface PerplexityCost {
  input_tokens_cost?: number;
  output_tokens_cost?: number;
  citation_tokens_cost?: number | null;
  reasoning_tokens_cost?: number | null;
  /** The flat per-request (search) fee. */
  request_cost?: number | null;
  search_queries_cost?: number | null;
  total_cost?: number;
  [extra: string]: unknown;
}

/**
 * Perplexity's usage object. It is kept whole in `extraFields.usage_details`, where accounting can
 * read the provider's own `cost.total_cost` (request fee included) instead of estimating it.
 */
export interface PerplexityUsage extends OpenAIUsage {
  citation_tokens?: number | null;
  num_search_queries?: number | null;
  reasoning_tokens?: number | null;
  search_context_size?: string | null;
  cost?: PerplexityCost | null;
}

/**
 * Perplexity reports `reasoning_tokens` beside `completion_tokens`, not inside it (deep research:
 * completion 3256, reasoning 73248, total = prompt + completion). Keyway's Usage counts reasoning
 * inside the output, as OpenAI does, so it is added to the output and the total. `citation_tokens`
 * are not added to the input: only some models bill them (at their own rate, `citationTokens`).
 * `search_context_size` and `num_search_queries` decide the search fee when Perplexity reports no cost.
 */
export function usageFromPerplexity(usage: PerplexityUsage | null | undefined, requestedContextSize?: string): Usage | undefined {
  const base = usageFromOpenAI(usage);
  if (base === undefined || usage === null || usage === undefined) return base;
  const reasoning = positive(usage.reasoning_tokens) ?? 0;
  const result: Usage =
    reasoning === 0
      ? { ...base }
      : { ...base, outputTokens: base.outputTokens + reasoning, totalTokens: base.inputTokens + base.outputTokens + reasoning, reasoningTokens: reasoning };
  const citations = positive(usage.citation_tokens);
  if (citations !== undefined) result.citationTokens = citations;
  const searches = typeof usage.num_search_queries === 'number' && Number.isFinite(usage.num_search_queries) ? usage.num_search_queries : undefined;
  if (searches !== undefined) result.searchQueries = searches;
  // Perplexity's request fee depends on the search depth; when neither side names it, Perplexity's default (low) applies.
  result.searchContextSize =
    typeof usage.search_context_size === 'string' ? usage.search_context_size : (requestedContextSize ?? PERPLEXITY_DEFAULT_SEARCH_CONTEXT_SIZE);
  const reportedCost = providerReportedCost(usage);
  if (reportedCost !== undefined) result.providerCostUsd = reportedCost;
  return result;
}

/**
 * An answer that carried no usage at all: both counts left for the account stage to estimate, and the
 * search depth still named, so the per-request search fee is charged as it is on every other answer.
 */
export function unreportedPerplexityUsage(requestedContextSize?: string): Usage {
  return { ...unreportedUsage(), searchContextSize: requestedContextSize ?? PERPLEXITY_DEFAULT_SEARCH_CONTEXT_SIZE };
}

/** What Perplexity searches at when `web_search_options.search_context_size` is not given. */
export const PERPLEXITY_DEFAULT_SEARCH_CONTEXT_SIZE = 'low';

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** The search depth a request asked for (`web_search_options.search_context_size`), when it names one. */
export function requestedSearchContextSize(request: Readonly<Record<string, unknown>>): string | undefined {
  const options = request.web_search_options;
  if (options === null || typeof options !== 'object') return undefined;
  const size = (options as Record<string, unknown>).search_context_size;
  return typeof size === 'string' ? size : undefined;
}

/**
 * Perplexity's own `cost.total_cost` (which includes the per-request search fee); undefined when it sent
 * none. A figure that is no number is passed on as NaN and a negative one as sent: the account stage
 * drops either for the list price and flags the row, as it does a 0 (core/accounting/usage-limits.ts).
 */
export function providerReportedCost(usage: PerplexityUsage): number | undefined {
  const total: unknown = usage.cost?.total_cost;
  if (total === undefined || total === null) return undefined;
  return typeof total === 'number' ? total : Number.NaN;
}
