import { refuseLegacyFunctions } from '../../core/wire/legacy-functions.ts';
import { invalidField, KeywayError } from '../../core/errors.ts';
import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { portableMessages, toolsWithoutBreakpoints } from '../../core/wire/provider-kit.ts';
import { normalizePerplexityMessages } from './messages.ts';

/** Perplexity's documented ceiling for `max_tokens`. */
export const PERPLEXITY_MAX_TOKENS = 128_000;

/**
 * The `/chat/completions` body. OpenAI fields and Perplexity's search extras (`search_domain_filter`,
 * `search_recency_filter`, `web_search_options`, `return_images`, `return_related_questions`,
 * `search_mode`, date filters…) pass through untouched; only what Sonar would reject is reshaped:
 * - messages, to Sonar's alternation rules (see messages.ts);
 * - `max_completion_tokens` → `max_tokens`, capped at 128 000;
 * - `response_format: json_object`, which Sonar refuses, → a `json_schema` asking for any object;
 * - a named `tool_choice`, which Sonar lacks, → `required` with only that tool;
 * - `stream_options` is dropped: it is not a Sonar parameter, and Sonar reports usage on its final
 *   chunk anyway;
 * - `stream_mode` is dropped: Keyway reads the default `full` chunk format;
 * - `logprobs`, `top_logprobs`, `logit_bias` and OpenAI-only features (audio output, predictions,
 *   stored completions, service tiers, seeds, end-user ids), which Sonar does not honour, are dropped
 *   with a warning.
 */
export function buildPerplexityChatBody(request: ChatRequest, model: string, settings: ProviderKeySettings, warnings: string[]): Record<string, unknown> {
  const {
    provider: _provider,
    routing: _routing,
    stream_options: _streamOptions,
    stream_mode: streamMode,
    max_completion_tokens: maxCompletionTokens,
    ...body
  } = request;
  refuseLegacyFunctions(request, 'perplexity');
  if (typeof body.n === 'number' && body.n > 1) {
    throw new KeywayError('unsupported_feature', { detail: 'perplexity returns one choice per request; n > 1 is not supported' }, { param: 'n' });
  }
  delete body.n;
  body.model = model;
  const messages = normalizePerplexityMessages(portableMessages(request.messages, 'perplexity', warnings));
  // An Anthropic-style prefill: Sonar answers only after the user's or a tool's turn. A refusal here lets
  // a fallback chain skip Sonar instead of ending on its 400 (QA20 seed F6).
  if (messages.at(-1)?.role === 'assistant') {
    throw new KeywayError(
      'unsupported_feature',
      {
        detail:
          'The conversation ends with an assistant message (a prefill for the answer to continue); Sonar answers only after a user or tool message, so perplexity cannot serve it.',
      },
      { param: `messages[${request.messages.length - 1}]` },
    );
  }
  body.messages = messages;
  if (request.tools !== undefined) body.tools = toolsWithoutBreakpoints(request.tools);
  if (body.stream !== true) delete body.stream;
  if (streamMode !== undefined && streamMode !== 'full')
    warnings.push(`perplexity: stream_mode '${String(streamMode)}' is not supported; the full format was used`);
  applyMaxTokens(body, maxCompletionTokens, settings, warnings);
  if (body.temperature === undefined && settings.temperature_default !== undefined) body.temperature = settings.temperature_default;
  applyResponseFormat(body, warnings);
  applyToolChoice(body, warnings);
  dropUnsupported(body, warnings);
  return body;
}

/**
 * OpenAI fields Sonar has no equivalent for: it answers without them (`logprobs: null`), so they are
 * dropped, with a warning. Besides the sampling ones, OpenAI's own features that Sonar's parameters
 * (reference §5.2) do not name: audio output, predicted outputs, stored completions and their
 * metadata, service tiers, seeds and end-user ids. Sonar takes unknown fields without a word, so
 * forwarded they were ignored silently (QA18: `modalities: ["text", "audio"]` got text and no warning).
 */
const UNSUPPORTED_FIELDS = [
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'modalities',
  'audio',
  'prediction',
  'store',
  'metadata',
  'service_tier',
  'seed',
  'user',
] as const;

function dropUnsupported(body: Record<string, unknown>, warnings: string[]): void {
  for (const field of UNSUPPORTED_FIELDS) {
    const value = body[field];
    delete body[field];
    // `false` and null ask for nothing, so nothing is lost by dropping them.
    if (value !== undefined && value !== null && value !== false) warnings.push(`perplexity: '${field}' is not supported by Sonar and was dropped`);
  }
}

function applyMaxTokens(body: Record<string, unknown>, maxCompletionTokens: unknown, settings: ProviderKeySettings, warnings: string[]): void {
  const requested = maxCompletionTokens ?? body.max_tokens ?? settings.max_tokens_default;
  if (typeof requested !== 'number') {
    delete body.max_tokens;
    return;
  }
  if (requested > PERPLEXITY_MAX_TOKENS) warnings.push(`perplexity: max_tokens ${requested} is above Perplexity's limit; sent ${PERPLEXITY_MAX_TOKENS}`);
  body.max_tokens = Math.min(requested, PERPLEXITY_MAX_TOKENS);
}

function applyResponseFormat(body: Record<string, unknown>, warnings: string[]): void {
  const format = body.response_format as { type?: string } | undefined;
  if (format?.type !== 'json_object') return;
  // A schema of any object is exactly json_object's promise, in the one JSON form Sonar accepts.
  body.response_format = { type: 'json_schema', json_schema: { schema: { type: 'object' } } };
  warnings.push("perplexity: response_format 'json_object' is not supported; sent as a json_schema for any JSON object");
}

/**
 * Sonar takes `tools` and `tool_choice` but its models answer in text rather than call them: a choice
 * that forces a call (`required`, or a named function) is passed on with a warning, since the answer
 * may come back as text with `finish_reason: stop` (QA14 migrator 14).
 */
function applyToolChoice(body: Record<string, unknown>, warnings: string[]): void {
  const choice = body.tool_choice;
  const forced = choice === 'required' || (choice !== null && typeof choice === 'object');
  if (forced && Array.isArray(body.tools) && body.tools.length > 0)
    warnings.push('perplexity: tool_choice that forces a tool call is not enforced: Sonar models may answer in text without calling a tool');
  if (choice === null || typeof choice !== 'object') return;
  const name = (choice as { function?: { name?: string } }).function?.name;
  const tools = (Array.isArray(body.tools) ? body.tools : []) as Array<{ function?: { name?: string } }>;
  const selected = tools.filter((tool) => tool.function?.name === name);
  if (selected.length === 0) throw invalidField('tool_choice', `names the function '${String(name)}', which is not in 'tools'`);
  body.tools = selected;
  body.tool_choice = 'required';
}
