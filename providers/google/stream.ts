import type { KeywayError } from '../../core/errors.ts';
import { networkFailure, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { StreamPart, Usage } from '../../core/spec/vocabulary.ts';
import { classifyGeminiStreamError, geminiGenerationFailure, PROVIDER_NAME } from './errors.ts';
import { blockedPromptFinishReason, mapGeminiFinishReason } from './finish-reason.ts';
import { createToolCallIdFactory, hasFunctionCall, toolCallFromPart, type GeminiCandidate, type GeminiResponse } from './response.ts';
import { usageFromGemini } from './usage.ts';

interface StreamState {
  nextToolCallId: (geminiId: string | undefined) => string;
  /** Per candidate: how many tool calls were opened (the OpenAI `tool_calls[].index`). */
  toolCounts: Map<number, number>;
  /** A finishReason arrived (any): the stream was not cut. */
  finished: boolean;
  /** A candidate finished with an answer, so a failed one beside it is that choice's finish, not the call's failure. */
  answered: boolean;
  /**
   * Finishes that report a failed generation (MALFORMED_FUNCTION_CALL and its siblings), held to the
   * end: only then is it known whether every candidate failed.
   */
  failedFinishes: Array<Extract<StreamPart, { type: 'finish' }>>;
  /** Gemini's `finishMessage` of the first failed candidate, for the error. */
  failureMessage: string | undefined;
  /** The last usageMetadata seen (it grows chunk by chunk); translated once, at the end. */
  usageMetadata: GeminiResponse['usageMetadata'] | undefined;
  /** Reused for every chunk's parts: no per-chunk arrays or nested generators. */
  parts: StreamPart[];
}

/**
 * Turns a Gemini `alt=sse` body into stream parts. Every chunk is a whole response object holding
 * an increment; there is no terminator, so a stream that closes before any finishReason was cut.
 */
export async function* geminiStreamParts(body: ReadableStream<Uint8Array>, signal: AbortSignal, requestedModel: string): AsyncGenerator<StreamPart> {
  const state: StreamState = {
    nextToolCallId: createToolCallIdFactory(),
    toolCounts: new Map(),
    finished: false,
    answered: false,
    failedFinishes: [],
    failureMessage: undefined,
    usageMetadata: undefined,
    parts: [],
  };
  let started = false;
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data.trim().length === 0) continue;
      const payload = parseChunk(event.data);
      if (payload === undefined) {
        yield errorPart(
          upstreamFailure({ provider: PROVIDER_NAME, status: undefined, reason: 'server_error', message: 'the stream carried a chunk that is not JSON' }),
        );
        return;
      }
      if (payload.error !== undefined) {
        yield errorPart(classifyGeminiStreamError(payload));
        return;
      }
      if (!started) {
        started = true;
        yield startPart(payload, requestedModel);
      }
      state.parts.length = 0;
      chunkParts(payload, state);
      for (const part of state.parts) yield part;
    }
  } catch (error) {
    yield errorPart(networkFailure(PROVIDER_NAME, error, signal));
    return;
  }
  if (signal.aborted) return;
  if (!state.finished) {
    yield errorPart(
      upstreamFailure({ provider: PROVIDER_NAME, status: undefined, reason: 'server_error', message: 'the stream ended before any finishReason' }),
    );
    return;
  }
  yield* closingParts(state);
}

/**
 * Usage last, OpenAI's order. A generation in which every candidate failed ends with an error part
 * instead of a finish that would pass for success (reference §7.7), as generateContent's answer is
 * refused (rejectFailedGeneration); usage still goes first, so the tokens it consumed are accounted.
 */
function* closingParts(state: StreamState): Generator<StreamPart> {
  const usage: Usage | undefined = usageFromGemini(state.usageMetadata);
  const [failed] = state.failedFinishes;
  if (!state.answered && failed !== undefined) {
    if (usage !== undefined) yield { type: 'usage', usage };
    yield errorPart(geminiGenerationFailure(failed.finishReason.raw ?? 'error', state.failureMessage));
    return;
  }
  yield* state.failedFinishes;
  if (usage !== undefined) yield { type: 'usage', usage };
}

/** The first chunk's usageMetadata already counts the whole prompt: it travels on the start part. */
function startPart(payload: GeminiResponse, requestedModel: string): StreamPart {
  const start: StreamPart = {
    type: 'start',
    id: payload.responseId ?? `gemini-${crypto.randomUUID()}`,
    model: payload.modelVersion ?? requestedModel,
    created: Math.floor(Date.now() / 1000),
  };
  const prompt = usageFromGemini(payload.usageMetadata);
  if (prompt !== undefined && prompt.inputTokens > 0) start.promptUsage = { ...prompt, outputTokens: 0, reasoningTokens: 0, totalTokens: prompt.inputTokens };
  return start;
}

function parseChunk(data: string): GeminiResponse | undefined {
  try {
    const parsed = JSON.parse(data) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as GeminiResponse) : undefined;
  } catch {
    return undefined;
  }
}

function chunkParts(payload: GeminiResponse, state: StreamState): void {
  // Usage grows chunk by chunk; the last one seen is the total.
  if (payload.usageMetadata !== undefined) state.usageMetadata = payload.usageMetadata;
  const candidates = Array.isArray(payload.candidates) ? payload.candidates : [];
  const blockReason = payload.promptFeedback?.blockReason;
  if (candidates.length === 0 && blockReason !== undefined) {
    state.finished = true;
    state.answered = true;
    state.parts.push({ type: 'finish', index: 0, finishReason: blockedPromptFinishReason(blockReason) });
    return;
  }
  for (const candidate of candidates) candidateParts(candidate, state);
}

/** Consecutive text parts become one delta; each function call, which arrives whole, one start plus one delta. */
function candidateParts(candidate: GeminiCandidate, state: StreamState): void {
  const { parts } = state;
  const index = candidate.index ?? 0;
  let text = '';
  for (const part of candidate.content?.parts ?? []) {
    if (typeof part.text === 'string' && part.thought !== true && !hasFunctionCall(part)) {
      text += part.text;
      continue;
    }
    if (text.length > 0) parts.push({ type: 'text-delta', index, text });
    text = '';
    // A thought's signature is Gemini's, not an Anthropic thinking signature: the ones Gemini needs
    // back (on function calls) ride in the tool-call id, so thoughts carry none, as when not streamed.
    if (hasFunctionCall(part)) toolCallParts(index, toolCallFromPart(part, state.nextToolCallId), state);
    else if (typeof part.text === 'string' && part.text.length > 0) parts.push({ type: 'reasoning-delta', index, text: part.text });
  }
  if (text.length > 0) parts.push({ type: 'text-delta', index, text });
  if (candidate.finishReason !== undefined) finishPart(candidate, index, state);
}

function finishPart(candidate: GeminiCandidate, index: number, state: StreamState): void {
  state.finished = true;
  const finish: StreamPart = { type: 'finish', index, finishReason: mapGeminiFinishReason(candidate.finishReason, (state.toolCounts.get(index) ?? 0) > 0) };
  if (finish.finishReason.unified !== 'error') {
    state.answered = true;
    state.parts.push(finish);
    return;
  }
  if (state.failedFinishes.length === 0 && typeof candidate.finishMessage === 'string') state.failureMessage = candidate.finishMessage;
  state.failedFinishes.push(finish);
}

function toolCallParts(index: number, toolCall: { id: string; function: { name: string; arguments: string } }, state: StreamState): void {
  const toolIndex = state.toolCounts.get(index) ?? 0;
  state.toolCounts.set(index, toolIndex + 1);
  state.parts.push({ type: 'tool-call-start', index, toolIndex, id: toolCall.id, name: toolCall.function.name });
  state.parts.push({ type: 'tool-call-delta', index, toolIndex, argumentsDelta: toolCall.function.arguments });
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}
