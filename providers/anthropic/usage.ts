import type { Usage } from '../../core/spec/vocabulary.ts';

/** Anthropic's usage object, as the Messages API and its stream events report it. */
export interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  output_tokens_details?: { thinking_tokens?: number | null } | null;
  [extra: string]: unknown;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/**
 * Anthropic's `input_tokens` excludes the cached parts, while Keyway's `inputTokens` is the whole
 * prompt (OpenAI's convention), so the cache reads and writes are added back in.
 */
export function usageFromAnthropic(usage: AnthropicUsage | null | undefined): Usage {
  const cacheWrite = count(usage?.cache_creation_input_tokens);
  const cacheRead = count(usage?.cache_read_input_tokens);
  const inputTokens = count(usage?.input_tokens) + cacheWrite + cacheRead;
  const outputTokens = count(usage?.output_tokens);
  return {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    cachedInputTokens: cacheRead,
    cacheWriteInputTokens: cacheWrite,
    reasoningTokens: count(usage?.output_tokens_details?.thinking_tokens),
  };
}

function larger(first: number | null | undefined, second: number | null | undefined): number {
  return Math.max(count(first), count(second));
}

/**
 * Combines `message_start` usage with the cumulative `message_delta` usage. Input counts take the
 * larger value because some Anthropic-compatible gateways report them only in `message_delta`.
 */
export function mergeStreamUsage(start: AnthropicUsage | undefined, delta: AnthropicUsage | undefined): AnthropicUsage {
  return {
    input_tokens: larger(start?.input_tokens, delta?.input_tokens),
    cache_creation_input_tokens: larger(start?.cache_creation_input_tokens, delta?.cache_creation_input_tokens),
    cache_read_input_tokens: larger(start?.cache_read_input_tokens, delta?.cache_read_input_tokens),
    output_tokens: count(delta?.output_tokens ?? start?.output_tokens),
    output_tokens_details: delta?.output_tokens_details ?? start?.output_tokens_details ?? null,
  };
}
