import type { Usage } from '../../core/spec/vocabulary.ts';
import { reportedCount, unreportedCounts } from '../../core/wire/usage-count.ts';

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

/** A count the client's answer and the books can read: what Anthropic reported, else 0 (cache fields are null when unused). */
function count(value: unknown): number {
  return reportedCount(value) ?? 0;
}

/**
 * Anthropic's `input_tokens` excludes the cached parts, while Keyway's `inputTokens` is the whole
 * prompt (OpenAI's convention), so the cache reads and writes are added back in. Cache writes are
 * split by lifetime (`cache_creation.ephemeral_5m/1h_input_tokens`): a 1-hour write costs more. When
 * only the breakdown is given, its sum is the write count. `output_tokens` already includes thinking,
 * so reasoning is a part of the output, never added to it. Anthropic always sends `input_tokens` and
 * `output_tokens`: one that is missing or not a number is named in `unreported`, for the account
 * stage to estimate (core/wire/usage-count.ts).
 */
export function usageFromAnthropic(usage: AnthropicUsage | null | undefined): Usage {
  const fiveMinutes = count(usage?.cache_creation?.ephemeral_5m_input_tokens);
  const oneHour = count(usage?.cache_creation?.ephemeral_1h_input_tokens);
  const cacheWrite = Math.max(count(usage?.cache_creation_input_tokens), fiveMinutes + oneHour);
  const cacheRead = count(usage?.cache_read_input_tokens);
  const uncached = reportedCount(usage?.input_tokens);
  const output = reportedCount(usage?.output_tokens);
  const inputTokens = (uncached ?? 0) + cacheWrite + cacheRead;
  const outputTokens = output ?? 0;
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
  const unreported = unreportedCounts(uncached, usage?.input_tokens, output, usage?.output_tokens);
  if (unreported !== undefined) result.unreported = unreported;
  return result;
}

/** The larger of two reported counts; when neither is a count, what was sent (for the reader to name). */
function larger(first: unknown, second: unknown): unknown {
  const one = reportedCount(first);
  const other = reportedCount(second);
  if (one === undefined) return other === undefined ? (first ?? second) : other;
  return other === undefined ? one : Math.max(one, other);
}

/**
 * Combines `message_start` usage with the cumulative `message_delta` usage. Input counts take the
 * larger value because some Anthropic-compatible gateways report them only in `message_delta` (and
 * Anthropic's own delta may send them as null).
 */
export function mergeStreamUsage(start: AnthropicUsage | undefined, delta: AnthropicUsage | undefined): AnthropicUsage {
  return {
    input_tokens: larger(start?.input_tokens, delta?.input_tokens) as number,
    cache_creation_input_tokens: larger(start?.cache_creation_input_tokens, delta?.cache_creation_input_tokens) as number,
    cache_read_input_tokens: larger(start?.cache_read_input_tokens, delta?.cache_read_input_tokens) as number,
    // message_start carries the breakdown by lifetime; a later delta that repeats it wins.
    cache_creation: delta?.cache_creation ?? start?.cache_creation ?? null,
    // As sent: usageFromAnthropic reads it, and names it when it is not a count.
    output_tokens: delta?.output_tokens ?? start?.output_tokens,
    output_tokens_details: delta?.output_tokens_details ?? start?.output_tokens_details ?? null,
    server_tool_use: delta?.server_tool_use ?? start?.server_tool_use ?? null,
  };
}
