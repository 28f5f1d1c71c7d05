// What a call cost at list price.

import type { Usage } from '../spec/vocabulary.ts';
import type { ModelCatalog } from './catalog.ts';

/**
 * List price of a call in USD: uncached input, cache reads and cache writes at their own rates,
 * output at the output rate. The first of `models` the catalog prices is used (the served name,
 * then the requested one); undefined when none is priced.
 */
export function costOf(catalog: ModelCatalog, provider: string, models: readonly string[], usage: Usage): number | undefined {
  let info;
  for (const model of models) {
    info = catalog.get(provider, model);
    if (info !== undefined) break;
  }
  if (info === undefined) return undefined;
  const uncachedInput = Math.max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens);
  const cost =
    uncachedInput * info.inputCostPerToken +
    usage.cachedInputTokens * (info.cacheReadCostPerToken ?? info.inputCostPerToken) +
    usage.cacheWriteInputTokens * (info.cacheWriteCostPerToken ?? info.inputCostPerToken) +
    usage.outputTokens * info.outputCostPerToken;
  // Micro-dollar precision: enough for one token of the cheapest model, free of float noise.
  return Math.round(cost * 1e9) / 1e9;
}
