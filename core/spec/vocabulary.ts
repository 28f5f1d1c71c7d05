// The gateway's shared vocabulary. Inbound requests are normalised to the OpenAI Chat Completions
// shape (the lingua franca every client speaks); providers translate from it and back into the
// provider-neutral result, stream parts, finish reasons and usage defined here.

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';

/**
 * A prompt-cache breakpoint as the client wrote it (Anthropic's `{type:"ephemeral", ttl?}`). Only
 * Anthropic reads it; the other providers leave it out.
 */
export type CacheControl = unknown;

export interface TextPart {
  type: 'text';
  text: string;
  cache_control?: CacheControl;
  [extra: string]: unknown;
}

export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
  cache_control?: CacheControl;
  [extra: string]: unknown;
}

/**
 * Anthropic's search result (a source the model may cite, with its citations flag), as the client
 * wrote it, in a user message or a `tool` message. Only Anthropic reads it; every other provider gets
 * its title, source and text as a text part (core/wire/search-results.ts).
 */
export interface SearchResultPart {
  type: 'search_result';
  source: string;
  title: string;
  content: TextPart[];
  citations?: { enabled?: boolean };
  cache_control?: CacheControl;
  [extra: string]: unknown;
}

/**
 * Anthropic's document (a PDF, plain text, custom content, a PDF URL or a Files API id, with its title,
 * context and citations flag), as the client wrote it. Only Anthropic reads it; every other provider
 * gets what can be translated (text, images, a PDF file part) or a refusal (core/wire/documents.ts).
 */
export interface DocumentPart {
  type: 'document';
  source: Record<string, unknown>;
  title?: string | null;
  context?: string | null;
  citations?: { enabled?: boolean } | null;
  cache_control?: CacheControl;
  [extra: string]: unknown;
}

export interface OtherPart {
  type: string;
  [extra: string]: unknown;
}

export type ContentPart = TextPart | ImagePart | SearchResultPart | DocumentPart | OtherPart;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * A `tool` message's content may be parts like a user message's (text, images and search results,
 * each with its cache_control): a provider whose tool results take only text keeps the text, gets a
 * search result as text and drops the rest with a warning.
 */
export interface ChatMessage {
  role: Role;
  content?: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  refusal?: string | null;
  /** A `tool` message reporting a failed call (Anthropic's tool_result `is_error`). */
  is_error?: boolean;
  /** A `tool` message's breakpoint on the whole result (Anthropic's tool_result block `cache_control`). */
  cache_control?: CacheControl;
  [extra: string]: unknown;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
  /** A breakpoint after this tool's definition (Anthropic's tool `cache_control`). */
  cache_control?: CacheControl;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema?: Record<string, unknown>; strict?: boolean; description?: string } };

export interface RoutingOptions {
  strategy?: string;
  use_byok_only?: boolean;
  fallback_to_parrotrouter?: boolean;
  provider_order?: string[];
  fallback_reasons?: string[];
  cost_weights?: Record<string, number>;
  prefer_byok?: boolean;
  /** First-byte deadline per attempt, in milliseconds. */
  timeout_ms?: number;
  connect_timeout_ms?: number;
  /** Deadline for the whole request, every attempt and backoff included. */
  total_timeout_ms?: number;
  /** Extra passes over the candidates, with backoff, after all of them failed. */
  retries?: number;
  max_attempts?: number;
  [extra: string]: unknown;
}

/**
 * Set by a dialect whose request says in its own words whether the client wants to see the model's
 * reasoning (the Responses API's `reasoning.summary`), for providers that return it only when asked
 * (Gemini's `includeThoughts`). A symbol, so no provider's body ever carries it; unset, each provider
 * reads the chat fields (`reasoning_effort`, `thinking`).
 */
export const REASONING_WANTED: unique symbol = Symbol('reasoning wanted');

/**
 * Texts a dialect sends to a provider as the client wrote them, beside the translated `messages`:
 * blocks only the provider's own API reads, forwarded whole (Anthropic's server tool blocks, a
 * Responses hosted tool's call items), or a body sent as it came (`count_tokens`). A policy that must
 * read every text a provider reads (content blocking) reads these too. A function of the request, so
 * nothing is computed for a request no policy asks about; absent when the dialect forwards nothing.
 */
export const FORWARDED_TEXTS: unique symbol = Symbol('forwarded texts');

export interface ForwardedText {
  text: string;
  /** Where it is, for a person: `message 2, content block 0 (web_fetch_tool_result)`. */
  where: string;
  /** Where it is, as the error's `param`: `messages[2].content[0]`. */
  param: string;
}

/** An OpenAI Chat Completions request body plus Keyway's `provider` and `routing` extras. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [extra: string]: unknown } | null;
  temperature?: number | null;
  top_p?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: ResponseFormat;
  user?: string;
  provider?: string;
  routing?: RoutingOptions;
  [REASONING_WANTED]?: boolean;
  [FORWARDED_TEXTS]?: (request: ChatRequest) => readonly ForwardedText[];
  [extra: string]: unknown;
}

export type UnifiedFinishReason = 'stop' | 'length' | 'tool-calls' | 'content-filter' | 'error' | 'other';

/** The provider's own reason is kept beside the unified one so nothing is lost in translation. */
export interface FinishReason {
  unified: UnifiedFinishReason;
  raw: string | undefined;
  /**
   * Set only when the provider says the output ended on one of the request's stop sequences: the
   * sequence when it names it (Anthropic), null when it does not say which (Cohere's STOP_SEQUENCE).
   * Providers that report a stop sequence as a plain stop (OpenAI, Gemini) leave it unset.
   */
  stopSequence?: string | null;
}

/**
 * Token usage. `inputTokens` is the whole prompt, cached parts included (OpenAI's convention);
 * `cachedInputTokens` and `cacheWriteInputTokens` are subsets of it. `reasoningTokens` is a subset of
 * `outputTokens`.
 */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cachedInputTokens: number;
  cacheWriteInputTokens: number;
  reasoningTokens: number;
  /** The part of `cacheWriteInputTokens` written for one hour (Anthropic's `ephemeral_1h`), priced at its own rate; absent = 0. */
  cacheWrite1hInputTokens?: number;
  /** Tokens of retrieved sources the provider bills separately (Perplexity's `citation_tokens`); not part of `inputTokens`. */
  citationTokens?: number;
  /** Searches the provider ran for the call (Perplexity's `num_search_queries`), for a per-query search fee. */
  searchQueries?: number;
  /** The search depth a per-request search fee depends on (Perplexity's `search_context_size`: low, medium, high). */
  searchContextSize?: string;
  /**
   * The processing tier the provider says it served the call at (OpenAI's `service_tier`: `priority`,
   * `flex`, `default`…): priced at that tier's rates where the table has them (`*_priority`, `*_flex`).
   */
  serviceTier?: string;
  /**
   * Provider-hosted tool calls the provider bills per call, by the name of the fee (OpenAI's
   * `web_search`, `file_search`…): each priced at the model's `toolCallCosts` for that name.
   */
  hostedToolCalls?: Readonly<Record<string, number>>;
  /**
   * What the provider itself says the call cost in USD, when it says (Perplexity's `cost.total_cost`,
   * request fee included): accounting books it instead of the list price.
   */
  providerCostUsd?: number;
  /**
   * The counts the provider did not report usably (absent, null, text, not finite), by field name
   * (`inputTokens`, `outputTokens`), with what it sent described without its text (`absent`, `null`,
   * `text of 3 characters`). The reader puts 0 in their place, so a client's answer shows what it
   * always did; the account stage books Keyway's estimate for them instead and flags the row
   * (core/accounting/usage-limits.ts). Absent, the usual case, when every count was reported.
   */
  unreported?: Readonly<Record<string, string>>;
}

export interface ResultChoice {
  index: number;
  message: ChatMessage;
  finishReason: FinishReason;
  logprobs?: unknown;
}

/** A provider-neutral non-streaming chat result. */
export interface ChatResult {
  id: string;
  model: string;
  created: number;
  choices: ResultChoice[];
  usage: Usage;
  /** Provider-specific top-level fields handed to the client as they are (Perplexity's citations…). */
  extraFields?: Record<string, unknown>;
  /**
   * The upstream body when it already is an OpenAI chat.completion: the OpenAI encoder sends it
   * unchanged, so fields Keyway does not model (logprobs, annotations, system_fingerprint) survive.
   */
  openAIBody?: Record<string, unknown>;
  /** The upstream body's exact text, when `openAIBody` was parsed from it: sent as is, not re-serialised. */
  openAIText?: string;
  /**
   * The upstream body in the inbound dialect's own shape, from a provider's native API for that
   * dialect (core/spec/provider.ts, NativeDialectApi): the dialect writes it back, nothing else does.
   */
  nativeBody?: Record<string, unknown>;
}

export type StreamPart =
  /**
   * `promptUsage`: the prompt's usage when the upstream states it before any content (Anthropic's
   * message_start, Gemini's first chunk); its output counts are 0. The closing `usage` part is the total.
   */
  | {
      type: 'start';
      id: string;
      model: string;
      created: number;
      promptUsage?: Usage;
      /** The dialect's own events follow (`native-event`): its encoder opens nothing of its own. */
      native?: boolean;
    }
  | { type: 'text-delta'; index: number; text: string }
  | { type: 'reasoning-delta'; index: number; text: string; signature?: string }
  | { type: 'tool-call-start'; index: number; toolIndex: number; id: string; name: string }
  | { type: 'tool-call-delta'; index: number; toolIndex: number; argumentsDelta: string }
  | { type: 'finish'; index: number; finishReason: FinishReason }
  | { type: 'usage'; usage: Usage }
  /**
   * Provider-specific top-level fields for the next chat chunk (Perplexity's citations, Cohere's
   * usage_details). Sent before the finish: after it only the usage chunk, when asked for, carries them.
   */
  | { type: 'extra-fields'; fields: Record<string, unknown> }
  /**
   * A chunk from an OpenAI-compatible upstream, forwarded byte for byte by the OpenAI encoder.
   * `chunk` is the parsed form for every other consumer (accounting, other encoders).
   */
  | { type: 'openai-chunk'; raw: string; chunk: OpenAIChunk }
  /**
   * An event of the inbound dialect's own API (a native call), as received (`raw`) and parsed (`data`):
   * only that dialect's encoder writes it. `text`: the generated text it carries, weighed for a stream
   * cut before its usage arrives. `noContent`: the adapter knows it carries nothing generated (an
   * opening event, a keep-alive, a failure's notice before its error part), so the opening hold may
   * hold it back (core/lifecycle/opening-hold.ts); unmarked, an event counts as content.
   */
  | { type: 'native-event'; event: string; data: Record<string, unknown>; raw: string; text?: string; noContent?: boolean }
  | { type: 'error'; error: ErrorDescriptor }
  /** The upstream's keep-alive (Anthropic's `ping`): dialects that have one pass it on. */
  | { type: 'keepalive' };

export interface OpenAIChunkChoice {
  index: number;
  delta: {
    role?: string;
    content?: string | null;
    reasoning_content?: string | null;
    refusal?: string | null;
    tool_calls?: Array<{ index: number; id?: string; type?: 'function'; function?: { name?: string; arguments?: string } }>;
    [extra: string]: unknown;
  };
  finish_reason: string | null;
  logprobs?: unknown;
}

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number; [extra: string]: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: number; [extra: string]: unknown } | null;
  [extra: string]: unknown;
}

export interface OpenAIChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: OpenAIChunkChoice[];
  usage?: OpenAIUsage | null;
  [extra: string]: unknown;
}

/**
 * What a failure means, independent of who reports it. `reason` is one of the spec's fallback
 * classes; `status` and `code` come from the error table in core/errors.ts.
 */
export const FAILURE_REASONS = [
  'rate_limit',
  'timeout',
  'server_error',
  'model_not_available',
  'quota_exceeded',
  'auth_error',
  'context_length_exceeded',
  'content_filtered',
  'invalid_request',
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface ErrorDescriptor {
  status: number;
  type: string;
  code: string;
  message: string;
  param?: string | null;
  reason?: FailureReason;
  retryAfterSeconds?: number;
  extra?: Record<string, unknown>;
}

export function emptyUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, totalTokens: 0, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };
}

/** The usage of a served answer that carried none at all: zeros for the client, both counts left for the account stage to estimate. */
export function unreportedUsage(): Usage {
  return { ...emptyUsage(), unreported: { inputTokens: 'absent', outputTokens: 'absent' } };
}
