// OpenAI's own Responses API (`POST /v1/responses`) for the `responses` dialect: the body the dialect
// prepared goes upstream as it is, the answer comes back as OpenAI wrote it. What the core needs of it
// (model, usage, finish reason) is read on the way; the typed events pass as `native-event` parts.

import type { KeywayError } from '../../core/errors.ts';
import type { CallContext, NativeDialectApi, ProviderCredential } from '../../core/spec/provider.ts';
import { unreportedUsage, type ChatResult, type FinishReason, type StreamPart, type Usage } from '../../core/spec/vocabulary.ts';
import { networkFailure, postUpstream, readJsonBody, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import { usageFromOpenAI, withServiceTier } from '../../core/wire/openai-shape.ts';
import { classifyOpenAIError, classifyOpenAIStreamError } from '../openai-compatible/errors.ts';
import { openAIHeaders, REASONING_MODEL } from '../openai-compatible/request.ts';
import { hostedToolCalls } from './hosted-tools.ts';

type Json = Record<string, unknown>;

export interface OpenAIResponsesOptions {
  name: string;
  baseUrlFor(credential: ProviderCredential): string;
  fetch: typeof fetch;
}

const REMAINING_HEADERS = ['x-ratelimit-remaining-requests'] as const;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The Responses usage in Chat Completions' terms, read by the same function: the books match the chat
 * path's, and a missing or non-numeric count is named for the account stage to estimate. An answer
 * without any usage is one whose counts are all unreported.
 */
export function usageFromResponses(usage: unknown): Usage {
  if (!isRecord(usage)) return unreportedUsage();
  const input = isRecord(usage.input_tokens_details) ? usage.input_tokens_details : undefined;
  const output = isRecord(usage.output_tokens_details) ? usage.output_tokens_details : undefined;
  // The counts go over as sent: usageFromOpenAI reads them (a total left out is the sum of the others).
  return usageFromOpenAI({
    prompt_tokens: usage.input_tokens as number,
    completion_tokens: usage.output_tokens as number,
    total_tokens: usage.total_tokens as number,
    prompt_tokens_details: input as { cached_tokens?: number; cache_write_tokens?: number } | undefined,
    completion_tokens_details: output as { reasoning_tokens?: number } | undefined,
  }) as Usage;
}

/** The hosted tool calls OpenAI bills per call, beside the tokens (providers/openai/hosted-tools.ts). */
function withToolCalls(usage: Usage, response: Json, request: Json): Usage {
  const calls = hostedToolCalls(response, request);
  return calls === undefined ? usage : { ...usage, hostedToolCalls: calls };
}

/** Items the caller runs: a response that ends with one is waiting for the caller, as a chat `tool_calls` finish. */
const CLIENT_CALLS = new Set([
  'function_call',
  'custom_tool_call',
  'computer_call',
  'local_shell_call',
  'shell_call',
  'apply_patch_call',
  'mcp_approval_request',
]);

export function finishReasonFromResponse(response: Json): FinishReason {
  const status = typeof response.status === 'string' ? response.status : undefined;
  if (status === 'incomplete') {
    const reason = isRecord(response.incomplete_details) ? String(response.incomplete_details.reason ?? '') : '';
    if (reason === 'max_output_tokens') return { unified: 'length', raw: reason };
    if (reason === 'content_filter') return { unified: 'content-filter', raw: reason };
    return { unified: 'other', raw: reason || status };
  }
  if (status === 'failed') return { unified: 'error', raw: status };
  const output = Array.isArray(response.output) ? response.output : [];
  const calls = output.some((item) => isRecord(item) && CLIENT_CALLS.has(String(item.type)));
  return { unified: calls ? 'tool-calls' : 'stop', raw: status };
}

function outputText(response: Json): string {
  let text = '';
  for (const item of Array.isArray(response.output) ? response.output : []) {
    if (!isRecord(item) || item.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content) if (isRecord(part) && part.type === 'output_text' && typeof part.text === 'string') text += part.text;
  }
  return text;
}

function failure(provider: string, response: Json): KeywayError {
  const error = isRecord(response.error) ? response.error : {};
  return classifyOpenAIStreamError(provider, { error: { type: 'server_error', code: error.code ?? null, message: error.message ?? 'the response failed' } });
}

/** The answer as the core reads it; the body itself rides in `nativeBody` for the dialect. */
function resultOf(provider: string, body: Json, model: string, request: Json): ChatResult {
  if (body.status === 'failed') throw failure(provider, body);
  const usage = withServiceTier(withToolCalls(usageFromResponses(body.usage), body, request), body.service_tier);
  return {
    id: typeof body.id === 'string' ? body.id : '',
    model: typeof body.model === 'string' ? body.model : model,
    created: typeof body.created_at === 'number' ? body.created_at : Math.floor(Date.now() / 1000),
    choices: [{ index: 0, message: { role: 'assistant', content: outputText(body) }, finishReason: finishReasonFromResponse(body) }],
    usage,
    nativeBody: body,
  };
}

const END_EVENTS = new Set(['response.completed', 'response.incomplete']);
/** The opening events, and the failure's notice that comes before its error part. */
const NO_CONTENT_EVENTS: ReadonlySet<string> = new Set(['response.created', 'response.queued', 'response.in_progress', 'response.failed']);

/**
 * Whether an event carries nothing generated, so the opening hold may hold it (core/lifecycle/opening-hold.ts).
 * Besides the opening events, OpenAI starts each output item and content part before writing into it:
 * an empty message or reasoning item, an empty text, refusal or summary part. They come before the first
 * delta, as Anthropic's empty block start does, and a failure right after them must still fall back
 * (QA19: only created and in_progress were held). A function call's item names its function: content.
 */
function carriesNothingGenerated(type: string, data: Json): boolean {
  if (NO_CONTENT_EVENTS.has(type)) return true;
  if (type === 'response.output_item.added') return isEmptyItem(data.item);
  if (type === 'response.content_part.added' || type === 'response.reasoning_summary_part.added') return isEmptyPart(data.part);
  return false;
}

function isEmptyItem(item: unknown): boolean {
  if (!isRecord(item)) return false;
  if (item.type === 'message') return isEmptyList(item.content);
  if (item.type === 'reasoning') return isEmptyList(item.summary) && isEmptyList(item.content) && isBlank(item.encrypted_content);
  return false;
}

function isEmptyPart(part: unknown): boolean {
  return isRecord(part) && isBlank(part.text) && isBlank(part.refusal) && isEmptyList(part.annotations);
}

function isEmptyList(value: unknown): boolean {
  return value === undefined || value === null || (Array.isArray(value) && value.length === 0);
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}

/**
 * OpenAI's typed events as parts: a `start` before `response.created` (the model, for the headers),
 * `usage` and `finish` before the closing event (booked even if the client leaves as it arrives), the
 * generated text of each delta weighed for a cut stream. `response.failed` and `error` end it as an
 * `error` part; a stream that stops before its closing event is one too.
 */
export async function* responsesStreamParts(
  provider: string,
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  request: Json = {},
): AsyncGenerator<StreamPart> {
  let ended = false;
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data.length === 0 || event.data === '[DONE]') continue;
      let data: Json;
      try {
        data = JSON.parse(event.data) as Json;
      } catch {
        yield errorPart(upstreamFailure({ provider, status: undefined, reason: 'server_error', message: 'the stream carried an event that is not JSON' }));
        return;
      }
      const type = typeof data.type === 'string' ? data.type : (event.event ?? '');
      // An error in any form (the typed `error` event, or an unnamed `data: {"error": …}` as chat
      // streams send) takes the one error path: scrubbed, and written in the Responses shape by the dialect.
      if (type === 'error' || (type === '' && isRecord(data.error))) {
        yield errorPart(classifyOpenAIStreamError(provider, isRecord(data.error) ? data : { error: data }));
        return;
      }
      // An event that names no type is nothing a Responses client can read: dropped, never written with an empty `event:` line.
      if (type === '') continue;
      const part: StreamPart = { type: 'native-event', event: type, data, raw: event.data };
      if (type.endsWith('.delta') && typeof data.delta === 'string') part.text = data.delta;
      // Nothing generated: held a moment after the stream opens, so a failure right after still falls back (core/lifecycle/opening-hold.ts).
      else if (carriesNothingGenerated(type, data)) part.noContent = true;
      const response = isRecord(data.response) ? data.response : undefined;
      if (type === 'response.created' && response !== undefined) {
        const created = typeof response.created_at === 'number' ? response.created_at : Math.floor(Date.now() / 1000);
        yield { type: 'start', id: String(response.id ?? ''), model: String(response.model ?? ''), created, native: true };
      } else if (END_EVENTS.has(type) && response !== undefined) {
        yield { type: 'usage', usage: withServiceTier(withToolCalls(usageFromResponses(response.usage), response, request), response.service_tier) };
        yield { type: 'finish', index: 0, finishReason: finishReasonFromResponse(response) };
        ended = true;
      } else if (type === 'response.failed' && response !== undefined) {
        // The provider's failed response is passed on with its error as the error part says it, the
        // way the dialect writes the failures Keyway makes (nativeError): the provider's own message
        // is upstream text, which may quote the key, and only the error path scrubs it.
        const error = failure(provider, response).toDescriptor();
        const scrubbed = { ...data, response: { ...response, error: { code: error.code, message: error.message } } };
        yield { ...part, data: scrubbed, raw: JSON.stringify(scrubbed) };
        yield { type: 'error', error };
        return;
      }
      yield part;
      if (ended) return;
    }
  } catch (error) {
    yield errorPart(networkFailure(provider, error, signal));
    return;
  }
  if (!signal.aborted)
    yield errorPart(upstreamFailure({ provider, status: undefined, reason: 'server_error', message: 'the stream ended before response.completed' }));
}

/**
 * The key's defaults where the caller said nothing, as on the chat path (buildOpenAIChatBody), and, as
 * there, a reasoning model sent for a request that named another model (a class substitute under
 * cost_optimized or a fallback chain) gets no `temperature` or `top_p` but 1: they were meant for the
 * model named, and the Responses API refuses them on reasoning models. Each is named in the warnings.
 */
function withKeyDefaults(body: Json, context: CallContext, provider: string): Json {
  const settings = context.credential.settings;
  const reasoning = typeof body.model === 'string' && REASONING_MODEL.test(body.model);
  const temperature = !reasoning && body.temperature === undefined && settings.temperature_default !== undefined;
  const maxTokens = body.max_output_tokens === undefined && settings.max_tokens_default !== undefined;
  const requested = context.requestedModel ?? '';
  const requestedBare = requested.slice(requested.lastIndexOf('/') + 1);
  const substitute = reasoning && requested !== '' && !REASONING_MODEL.test(requestedBare);
  const sampling = substitute ? SAMPLING.filter((name) => body[name] !== undefined && body[name] !== 1) : [];
  // A substitute for a model whose API takes fewer output tokens (Anthropic's 10) would meet OpenAI's
  // 400 and fail the fallback (QA20 seed); the client's own OpenAI model keeps OpenAI's refusal.
  const belowFloor =
    requested !== '' && requestedBare !== body.model && typeof body.max_output_tokens === 'number' && body.max_output_tokens < MIN_OUTPUT_TOKENS;
  if (!temperature && !maxTokens && sampling.length === 0 && !belowFloor) return body;
  const defaulted = { ...body };
  if (temperature) defaulted.temperature = settings.temperature_default;
  if (maxTokens) defaulted.max_output_tokens = settings.max_tokens_default;
  if (belowFloor) {
    defaulted.max_output_tokens = MIN_OUTPUT_TOKENS;
    const warning = `${provider}: max_output_tokens ${String(body.max_output_tokens)} is below the ${MIN_OUTPUT_TOKENS} OpenAI's Responses API takes; sent ${MIN_OUTPUT_TOKENS} (the request named ${requested})`;
    if (!context.warnings.includes(warning)) context.warnings.push(warning);
  }
  for (const name of sampling) {
    delete defaulted[name];
    if (body[name] === null) continue;
    const warning = `${provider}: ignored '${name}' (${String(body.model)} is a reasoning model, which refuses it; it was meant for the model the request named)`;
    if (!context.warnings.includes(warning)) context.warnings.push(warning);
  }
  return defaulted;
}

/** The smallest `max_output_tokens` OpenAI's Responses API takes. */
const MIN_OUTPUT_TOKENS = 16;

/** The sampling settings reasoning models take only at 1. */
const SAMPLING = ['temperature', 'top_p'] as const;

export function createOpenAIResponsesApi(options: OpenAIResponsesOptions): NativeDialectApi {
  const { name } = options;
  const classify = (status: number, body: string, headers: Headers) => classifyOpenAIError(name, status, body, headers);

  function send(body: Json, context: CallContext, stream: boolean): Promise<Response> {
    return postUpstream(
      options.fetch,
      {
        url: `${options.baseUrlFor(context.credential)}/responses`,
        headers: openAIHeaders(context.credential.apiKey, context.credential.organizationId, stream),
        body: JSON.stringify({ ...withKeyDefaults(body, context, name), stream }),
        info: { requestIdHeader: 'x-request-id', remainingHeaders: REMAINING_HEADERS },
      },
      context,
      name,
      classify,
    );
  }

  return {
    async call(body, context) {
      const response = await send(body, context, false);
      return resultOf(name, await readJsonBody(response, name, context.signal), context.model, body);
    },
    async stream(body, context) {
      const response = await send(body, context, true);
      if (response.body === null) throw upstreamFailure({ provider: name, status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return responsesStreamParts(name, response.body, context.signal, body);
    },
  };
}
