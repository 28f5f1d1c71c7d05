import type { KeywayError } from '../../core/errors.ts';
import { networkFailure, parseJsonOrUndefined, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { OpenAIChunk, OpenAIChunkChoice, StreamPart } from '../../core/spec/vocabulary.ts';
import { mapOpenAIFinishReason } from '../openai-compatible/finish-reason.ts';
import { classifyPerplexityStreamError } from './errors.ts';
import { PERPLEXITY_EXTRA_FIELDS } from './response.ts';
import { unreportedPerplexityUsage, usageFromPerplexity, type PerplexityUsage } from './usage.ts';

interface StreamState {
  started: boolean;
  /** Choices that sent a finish; Perplexity may repeat `finish_reason` on its closing chunks. */
  finishedChoices: Set<number>;
  /** The finishes, held to the end so that Perplexity's usage, which may come after them, rides on them. */
  finishes: StreamPart[];
  /** Length of each search field last sent, so a field is re-sent only when it grows. */
  sentFieldLengths: Map<string, number>;
  /** Perplexity may repeat usage on several chunks; the last one is the final count. */
  usage: PerplexityUsage | undefined;
  /** `${choice}:${tool}` of tool calls already started. */
  startedToolCalls: Set<string>;
  /** Reused for every chunk's parts: no per-chunk arrays or nested generators. */
  parts: StreamPart[];
}

/**
 * Turns a Sonar SSE body into stream parts. Chunks are OpenAI-shaped but carry Perplexity's own
 * fields: `citations`, `search_results`, `images`… become `extra-fields` parts when they first
 * appear (and again if they grow). Usage, sent on the final chunk(s) whatever `stream_options` says,
 * is known only at the end: the finishes wait for it, behind an `extra-fields` part with
 * Perplexity's usage object (`usage_details`, cost included) that the chat encoder puts on the
 * finish chunk (as Cohere's), and one `usage` part follows them, which reaches a client only if it
 * asked for usage. The stream ends at `[DONE]`, or when the connection closes after a finish; a close
 * before any finish ends with an error part, as does `event: error`.
 */
export async function* perplexityStreamParts(body: ReadableStream<Uint8Array>, signal: AbortSignal, requestedContextSize?: string): AsyncGenerator<StreamPart> {
  const state: StreamState = {
    started: false,
    finishedChoices: new Set(),
    finishes: [],
    sentFieldLengths: new Map(),
    usage: undefined,
    startedToolCalls: new Set(),
    parts: [],
  };
  let done = false;
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data === '[DONE]') {
        done = true;
        break;
      }
      if (event.data.length === 0) continue;
      const payload = parseJsonOrUndefined(event.data) as Record<string, unknown> | undefined;
      if (event.event === 'error' || (payload !== undefined && payload.error !== undefined && payload.choices === undefined)) {
        yield errorPart(classifyPerplexityStreamError(event.data));
        return;
      }
      if (payload === undefined || typeof payload !== 'object') {
        yield errorPart(
          upstreamFailure({ provider: 'perplexity', status: undefined, reason: 'server_error', message: 'the stream carried a chunk that is not JSON' }),
        );
        return;
      }
      state.parts.length = 0;
      chunkParts(payload as unknown as OpenAIChunk, state);
      for (const part of state.parts) yield part;
    }
  } catch (error) {
    // A reset after the finish: the finish (and the usage, when it came) still reach the client, as they
    // did before finishes were held for the usage; the answer is whole once the usage is known.
    if (state.finishes.length > 0 && !signal.aborted) {
      yield* closingParts(state, requestedContextSize);
      if (state.usage !== undefined) return;
    }
    yield errorPart(networkFailure('perplexity', error, signal));
    return;
  }
  if (signal.aborted) return;
  if (!done && state.finishedChoices.size === 0) {
    yield errorPart(upstreamFailure({ provider: 'perplexity', status: undefined, reason: 'server_error', message: 'the stream ended before a finish' }));
    return;
  }
  yield* closingParts(state, requestedContextSize);
}

function chunkParts(chunk: OpenAIChunk, state: StreamState): void {
  if (!state.started) {
    state.started = true;
    state.parts.push({
      type: 'start',
      id: String(chunk.id ?? ''),
      model: String(chunk.model ?? ''),
      created: typeof chunk.created === 'number' ? chunk.created : Math.floor(Date.now() / 1000),
    });
  }
  const fields = newSearchFields(chunk, state);
  if (fields !== undefined) state.parts.push({ type: 'extra-fields', fields });
  if (chunk.usage !== undefined && chunk.usage !== null) state.usage = chunk.usage as PerplexityUsage;
  for (const choice of Array.isArray(chunk.choices) ? chunk.choices : []) choiceParts(choice, state);
}

function newSearchFields(chunk: OpenAIChunk, state: StreamState): Record<string, unknown> | undefined {
  let fields: Record<string, unknown> | undefined;
  for (const name of PERPLEXITY_EXTRA_FIELDS) {
    const value = chunk[name];
    if (!Array.isArray(value) || value.length === 0 || state.sentFieldLengths.get(name) === value.length) continue;
    state.sentFieldLengths.set(name, value.length);
    fields ??= {};
    fields[name] = value;
  }
  return fields;
}

function choiceParts(choice: OpenAIChunkChoice, state: StreamState): void {
  const { parts } = state;
  const index = typeof choice.index === 'number' ? choice.index : 0;
  const delta = choice.delta ?? {};
  if (typeof delta.content === 'string' && delta.content.length > 0) parts.push({ type: 'text-delta', index, text: delta.content });
  for (const call of delta.tool_calls ?? []) {
    const toolIndex = typeof call.index === 'number' ? call.index : 0;
    const key = `${index}:${toolIndex}`;
    if (!state.startedToolCalls.has(key)) {
      state.startedToolCalls.add(key);
      parts.push({ type: 'tool-call-start', index, toolIndex, id: call.id ?? `call_${toolIndex}`, name: call.function?.name ?? '' });
    }
    const argumentsDelta = call.function?.arguments;
    if (typeof argumentsDelta === 'string' && argumentsDelta.length > 0) parts.push({ type: 'tool-call-delta', index, toolIndex, argumentsDelta });
  }
  if (choice.finish_reason !== null && choice.finish_reason !== undefined && !state.finishedChoices.has(index)) {
    state.finishedChoices.add(index);
    state.finishes.push({ type: 'finish', index, finishReason: mapOpenAIFinishReason(choice.finish_reason) });
  }
}

function* closingParts(state: StreamState, requestedContextSize: string | undefined): Generator<StreamPart> {
  if (state.usage !== undefined) yield { type: 'extra-fields', fields: { usage_details: state.usage } };
  yield* state.finishes;
  // A stream that ended without usage still names its search depth, so the request fee is charged; its
  // counts are left for the account stage to estimate.
  yield { type: 'usage', usage: usageFromPerplexity(state.usage, requestedContextSize) ?? unreportedPerplexityUsage(requestedContextSize) };
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}
