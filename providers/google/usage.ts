import type { Usage } from '../../core/spec/vocabulary.ts';

export interface GeminiUsageMetadata {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  totalTokenCount?: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  toolUsePromptTokenCount?: number;
  [extra: string]: unknown;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/**
 * Gemini's usageMetadata in Keyway's terms (reference §7.6). `promptTokenCount` already includes
 * cached tokens; tool-use prompt tokens are input too, so input + output equals Gemini's total.
 * Thoughts are billed as output, so they count in `outputTokens` as well as `reasoningTokens`.
 */
export function usageFromGemini(metadata: GeminiUsageMetadata | null | undefined): Usage | undefined {
  if (metadata === null || metadata === undefined) return undefined;
  const reasoningTokens = count(metadata.thoughtsTokenCount);
  const inputTokens = count(metadata.promptTokenCount) + count(metadata.toolUsePromptTokenCount);
  const outputTokens = count(metadata.candidatesTokenCount) + reasoningTokens;
  return {
    inputTokens,
    outputTokens,
    totalTokens: metadata.totalTokenCount === undefined ? inputTokens + outputTokens : count(metadata.totalTokenCount),
    cachedInputTokens: count(metadata.cachedContentTokenCount),
    cacheWriteInputTokens: 0,
    reasoningTokens,
  };
}
