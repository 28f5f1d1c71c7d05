import type { Usage } from '../../core/spec/vocabulary.ts';
import { reportedCount, unreportedCounts } from '../../core/wire/usage-count.ts';

export interface CohereUsageCounts {
  input_tokens?: number | null;
  output_tokens?: number | null;
  [extra: string]: unknown;
}

/** Cohere's `usage` object (chat `usage`, stream `message-end.delta.usage`). */
export interface CohereUsage {
  billed_units?: CohereUsageCounts | null;
  tokens?: CohereUsageCounts | null;
  cached_tokens?: number | null;
  [extra: string]: unknown;
}

/** Cohere sends counts as floats at times (`18.0`); Keyway counts whole tokens, rounded up as everywhere (usage-limits.ts). */
function count(value: unknown): number | undefined {
  const reported = reportedCount(value);
  return reported === undefined ? undefined : Math.ceil(reported);
}

/**
 * Reports `billed_units` because that is what the key's owner pays for: `tokens` also counts Cohere's
 * prompt-template overhead (71 processed vs 5 billed in Cohere's own example). `tokens` fills in only
 * where `billed_units` is silent. `cached_tokens` is clamped to the input so it stays a subset of it.
 * An input or output count neither reports is named in `unreported`, for the account stage to
 * estimate (core/wire/usage-count.ts).
 */
export function usageFromCohere(usage: CohereUsage | null | undefined): Usage | undefined {
  if (usage === null || usage === undefined) return undefined;
  const input = count(usage.billed_units?.input_tokens) ?? count(usage.tokens?.input_tokens);
  const output = count(usage.billed_units?.output_tokens) ?? count(usage.tokens?.output_tokens);
  const inputTokens = input ?? 0;
  const outputTokens = output ?? 0;
  const result: Usage = {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    cachedInputTokens: Math.min(count(usage.cached_tokens) ?? 0, inputTokens),
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
  };
  const unreported = unreportedCounts(input, usage.billed_units?.input_tokens, output, usage.billed_units?.output_tokens);
  if (unreported !== undefined) result.unreported = unreported;
  return result;
}
