// Conversions between Keyway's vocabulary and the OpenAI wire shapes, which the core speaks inbound.

import type { FinishReason, OpenAIUsage, UnifiedFinishReason, Usage } from '../spec/vocabulary.ts';
import { reportedCount, unreportedCounts } from './usage-count.ts';

const UNIFIED_BY_OPENAI: Record<string, UnifiedFinishReason> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
};

const OPENAI_BY_UNIFIED: Record<UnifiedFinishReason, string> = {
  stop: 'stop',
  length: 'length',
  'tool-calls': 'tool_calls',
  'content-filter': 'content_filter',
  error: 'stop',
  other: 'stop',
};

export function finishReasonFromOpenAI(raw: string | null | undefined): FinishReason {
  if (raw === null || raw === undefined) return { unified: 'other', raw: undefined };
  return { unified: UNIFIED_BY_OPENAI[raw] ?? 'other', raw };
}

export function openAIFinishReason(reason: FinishReason): string {
  return OPENAI_BY_UNIFIED[reason.unified];
}

/** A count the client's answer and the books can read: what the provider reported, else 0. */
function count(value: unknown): number {
  return reportedCount(value) ?? 0;
}

/**
 * OpenAI's usage already counts cached tokens inside prompt_tokens, as Keyway's Usage does. A prompt or
 * completion count that is missing or not a number is named in `unreported`, for the account stage to
 * estimate (core/wire/usage-count.ts).
 */
export function usageFromOpenAI(usage: OpenAIUsage | null | undefined): Usage | undefined {
  if (usage === null || usage === undefined) return undefined;
  const input = reportedCount(usage.prompt_tokens);
  const output = reportedCount(usage.completion_tokens);
  const inputTokens = input ?? 0;
  const outputTokens = output ?? 0;
  const result: Usage = {
    inputTokens,
    outputTokens,
    totalTokens: usage.total_tokens === undefined ? inputTokens + outputTokens : count(usage.total_tokens),
    cachedInputTokens: count(usage.prompt_tokens_details?.cached_tokens),
    cacheWriteInputTokens: count(usage.prompt_tokens_details?.cache_write_tokens),
    reasoningTokens: count(usage.completion_tokens_details?.reasoning_tokens),
  };
  const unreported = unreportedCounts(input, usage.prompt_tokens, output, usage.completion_tokens);
  if (unreported !== undefined) result.unreported = unreported;
  return result;
}

/** A tier name as OpenAI writes one (`priority`, `flex`, `default`, `scale`); anything else says nothing. */
const SERVICE_TIER = /^[a-z][a-z_]{0,31}$/;

/**
 * The usage with the processing tier the answer says it was served at (OpenAI's top-level
 * `service_tier`, on the body, each stream chunk and the Responses object), which prices it.
 */
export function withServiceTier(usage: Usage, tier: unknown): Usage {
  return typeof tier === 'string' && SERVICE_TIER.test(tier) ? { ...usage, serviceTier: tier } : usage;
}

export function openAIUsage(usage: Usage): OpenAIUsage {
  const result: OpenAIUsage = {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedInputTokens },
    completion_tokens_details: { reasoning_tokens: usage.reasoningTokens },
  };
  if (usage.cacheWriteInputTokens > 0) (result.prompt_tokens_details as Record<string, number>).cache_write_tokens = usage.cacheWriteInputTokens;
  return result;
}
