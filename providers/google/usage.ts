import type { Usage } from '../../core/spec/vocabulary.ts';
import { reportedCount, unreportedCounts } from '../../core/wire/usage-count.ts';

export interface GeminiUsageMetadata {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  totalTokenCount?: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  toolUsePromptTokenCount?: number;
  [extra: string]: unknown;
}

/** A count the client's answer and the books can read: what Gemini reported, else 0 (it leaves out counts that are 0). */
function count(value: unknown): number {
  return reportedCount(value) ?? 0;
}

/** Gemini leaves a count of 0 out of its JSON: only a count it sent as something else (text, null) is unreported. */
function sentUnusable(value: unknown): boolean {
  return value !== undefined && reportedCount(value) === undefined;
}

/**
 * Gemini's usageMetadata in Keyway's terms (reference §7.6). `promptTokenCount` already includes
 * cached tokens; tool-use prompt tokens are input too, so input + output equals Gemini's total.
 * Thoughts are billed as output, so they count in `outputTokens` as well as `reasoningTokens`. A
 * prompt, candidates or thoughts count sent as something other than a count is named in `unreported`
 * (its side, input or output), for the account stage to estimate (core/wire/usage-count.ts).
 */
export function usageFromGemini(metadata: GeminiUsageMetadata | null | undefined): Usage | undefined {
  if (metadata === null || metadata === undefined) return undefined;
  const reasoningTokens = count(metadata.thoughtsTokenCount);
  const inputTokens = count(metadata.promptTokenCount) + count(metadata.toolUsePromptTokenCount);
  const outputTokens = count(metadata.candidatesTokenCount) + reasoningTokens;
  const result: Usage = {
    inputTokens,
    outputTokens,
    totalTokens: metadata.totalTokenCount === undefined ? inputTokens + outputTokens : count(metadata.totalTokenCount),
    cachedInputTokens: count(metadata.cachedContentTokenCount),
    cacheWriteInputTokens: 0,
    reasoningTokens,
  };
  const candidatesUnusable = sentUnusable(metadata.candidatesTokenCount);
  const unreported = unreportedCounts(
    sentUnusable(metadata.promptTokenCount) ? undefined : inputTokens,
    metadata.promptTokenCount,
    candidatesUnusable || sentUnusable(metadata.thoughtsTokenCount) ? undefined : outputTokens,
    candidatesUnusable ? metadata.candidatesTokenCount : metadata.thoughtsTokenCount,
  );
  if (unreported !== undefined) result.unreported = unreported;
  return result;
}
