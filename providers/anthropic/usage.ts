import type { Usage } from '../../core/spec/vocabulary.ts';

/** Anthropic's usage object, as the Messages API and its stream events report it. */
export interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  /** The cache writes by lifetime; their sum is `cache_creation_input_tokens`. */
  cache_creation?: { ephemeral_5m_input_tokens?: number | null; ephemeral_1h_input_tokens?: number | null } | null;
  output_tokens_details?: { thinking_tokens?: number | null } | null;
  /** Server tools Anthropic ran: each web search is billed on top of the tokens. */
  server_tool_use?: { web_search_requests?: number | null; [extra: string]: unknown } | null;
  [extra: string]: unknown;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/**
 * Anthropic's `input_tokens` excludes the cached parts, while Keyway's `inputTokens` is the whole
 * prompt (OpenAI's convention), so the cache reads and writes are added back in. Cache writes are
 * split by lifetime (`cache_creation.ephemeral_5m/1h_input_tokens`): a 1-hour write costs more. When
 * only the breakdown is given, its sum is the write count. `output_tokens` already includes thinking,
 * so reasoning is a part of the output, never added to it.
 */
export function usageFromAnthropic(usage: AnthropicUsage | null | undefined): Usage {
  const fiveMinutes = count(usage?.cache_creation?.ephemeral_5m_input_tokens);
  const oneHour = count(usage?.cache_creation?.ephemeral_1h_input_tokens);
  const cacheWrite = Math.max(count(usage?.cache_creation_input_tokens), fiveMinutes + oneHour);
  const cacheRead = count(usage?.cache_read_input_tokens);
  const inputTokens = count(usage?.input_tokens) + cacheWrite + cacheRead;
  const outputTokens = count(usage?.output_tokens);
  const result: Usage = {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    cachedInputTokens: cacheRead,
    cacheWriteInputTokens: cacheWrite,
    reasoningTokens: Math.min(count(usage?.output_tokens_details?.thinking_tokens), outputTokens),
  };
  if (oneHour > 0) result.cacheWrite1hInputTokens = Math.min(oneHour, cacheWrite);
  const searches = count(usage?.server_tool_use?.web_search_requests);
  if (searches > 0) result.searchQueries = searches;
  return result;
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
    // message_start carries the breakdown by lifetime; a later delta that repeats it wins.
    cache_creation: delta?.cache_creation ?? start?.cache_creation ?? null,
    output_tokens: count(delta?.output_tokens ?? start?.output_tokens),
    output_tokens_details: delta?.output_tokens_details ?? start?.output_tokens_details ?? null,
    server_tool_use: delta?.server_tool_use ?? start?.server_tool_use ?? null,
  };
}
