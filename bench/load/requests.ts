// The one request every path under test receives, so the paths differ only by what sits between the
// load generator and the upstream stub.

export const UPSTREAM_API_KEY = 'sk-bench-upstream-key';
export const ADMIN_API_KEY = 'kw_op_benchadminkey0123456789abcdef';
export const BENCH_MODEL = 'gpt-4o-mini';
export const CHAT_COMPLETIONS_PATH = '/v1/chat/completions';

/** Size the non-streaming request body is padded to, in bytes. */
export const REQUEST_BODY_BYTES = 1024;

interface ChatBody {
  model: string;
  messages: { role: 'user'; content: string }[];
  stream?: boolean;
  stream_options?: { include_usage: boolean };
  routing?: Record<string, unknown>;
}

function padToSize(build: (content: string) => ChatBody, targetBytes: number): string {
  const prefix = 'Benchmark request. ';
  const empty = JSON.stringify(build(prefix));
  const padding = Math.max(0, targetBytes - Buffer.byteLength(empty));
  // Words rather than one long token so a tokenizer on the path does realistic work.
  const filler = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(padding / 27) + 1).slice(0, padding);
  return JSON.stringify(build(prefix + filler));
}

/** The ~1 KB non-streaming chat request. */
export function buildChatBody(): string {
  return padToSize((content) => ({ model: BENCH_MODEL, messages: [{ role: 'user', content }] }), REQUEST_BODY_BYTES);
}

/** The seed team's allowed OpenAI model (its member key may not ask for gpt-4o-mini). */
export const TEAM_MODEL = 'gpt-3.5-turbo';

/** The ~1 KB request again, for a team member: the model the seed team allows. */
export function buildTeamChatBody(): string {
  return padToSize((content) => ({ model: TEAM_MODEL, messages: [{ role: 'user', content }] }), REQUEST_BODY_BYTES);
}

/** The same request asking for a stream with a usage chunk. */
export function buildStreamingChatBody(): string {
  return padToSize(
    (content) => ({
      model: BENCH_MODEL,
      messages: [{ role: 'user', content }],
      stream: true,
      stream_options: { include_usage: true },
    }),
    REQUEST_BODY_BYTES,
  );
}

/** The fallback reasons of the routing issue: every transient failure moves on to the next provider. */
export const FALLBACK_REASONS = ['rate_limit', 'timeout', 'server_error', 'model_not_available'];

/** The non-streaming request with a fallback chain over `providerOrder`, still padded to the same size. */
export function buildRoutedChatBody(providerOrder: readonly string[]): string {
  const routing = { strategy: 'fallback_chain', provider_order: providerOrder, fallback_reasons: FALLBACK_REASONS };
  return padToSize((content) => ({ model: BENCH_MODEL, messages: [{ role: 'user', content }], routing }), REQUEST_BODY_BYTES);
}

/** An OpenAI chat.completion as the API sends it, with the usage every benchmark answer carries. */
export function openAICompletion(fields: { id: string; created: number; model: string; content: string; fingerprint: string }): {
  [field: string]: unknown;
  choices: Array<{ index: number; message: { role: string; content: string; refusal: null; annotations: never[] }; logprobs: null; finish_reason: string }>;
} {
  return {
    id: fields.id,
    object: 'chat.completion',
    created: fields.created,
    model: fields.model,
    choices: [{ index: 0, message: { role: 'assistant', content: fields.content, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: 212,
      completion_tokens: 96,
      total_tokens: 308,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: fields.fingerprint,
  };
}
