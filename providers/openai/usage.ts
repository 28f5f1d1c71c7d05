import type { OpenAIUsage, Usage } from '../../core/vocabulary.ts';

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** OpenAI's usage already counts cached tokens inside prompt_tokens, as Keyway's Usage does. */
export function usageFromOpenAI(usage: OpenAIUsage | null | undefined): Usage | undefined {
  if (usage === null || usage === undefined) return undefined;
  const inputTokens = count(usage.prompt_tokens);
  const outputTokens = count(usage.completion_tokens);
  return {
    inputTokens,
    outputTokens,
    totalTokens: usage.total_tokens === undefined ? inputTokens + outputTokens : count(usage.total_tokens),
    cachedInputTokens: count(usage.prompt_tokens_details?.cached_tokens),
    cacheWriteInputTokens: count(usage.prompt_tokens_details?.cache_write_tokens),
    reasoningTokens: count(usage.completion_tokens_details?.reasoning_tokens),
  };
}
