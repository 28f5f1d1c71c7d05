import type { KeywayError } from '../../core/errors.ts';
import { networkFailure, parseJsonOrUndefined, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { StreamPart } from '../../core/spec/vocabulary.ts';
import { cohereGenerationFailure } from './errors.ts';
import { mapCohereFinishReason } from './finish-reason.ts';
import { usageFromCohere, type CohereUsage } from './usage.ts';

interface CohereStreamEvent {
  type?: string;
  id?: string;
  index?: number;
  delta?: {
    message?: {
      content?: { type?: string; text?: string; thinking?: string };
      tool_plan?: string;
      tool_calls?: { id?: string; type?: string; function?: { name?: string; arguments?: string } };
    };
    finish_reason?: string;
    usage?: CohereUsage;
    error?: string | null;
  };
}

interface StreamState {
  model: string;
  started: boolean;
  toolPlan: string;
  /** Cohere's event `index` → OpenAI's position within tool calls (they need not match). */
  toolIndexByEventIndex: Map<number, number>;
  nextToolIndex: number;
  ended: boolean;
  /** Reused for every event's parts. */
  parts: StreamPart[];
}

/**
 * Turns a Cohere v2 SSE body into stream parts, keyed on each payload's `type` (the `event:` line
 * repeats it). The stream ends at `message-end`; a `[DONE]` line is accepted
 * but not required. A connection that closes before `message-end` ends with an error part.
 */
export async function* cohereStreamParts(body: ReadableStream<Uint8Array>, model: string, signal: AbortSignal): AsyncGenerator<StreamPart> {
  const state: StreamState = { model, started: false, toolPlan: '', toolIndexByEventIndex: new Map(), nextToolIndex: 0, ended: false, parts: [] };
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data === '[DONE]') break;
      if (event.data.length === 0) continue;
      const payload = parseJsonOrUndefined(event.data);
      if (payload === null || typeof payload !== 'object') {
        yield errorPart(
          upstreamFailure({ provider: 'cohere', status: undefined, reason: 'server_error', message: 'the stream carried an event that is not JSON' }),
        );
        return;
      }
      const cohereEvent = payload as CohereStreamEvent;
      // `type` is authoritative; the `event:` name stands in only where a relay dropped it.
      if (cohereEvent.type === undefined && event.event !== undefined) cohereEvent.type = event.event;
      for (const part of partsFor(cohereEvent, state)) {
        yield part;
        if (part.type === 'error') return;
      }
      if (state.ended) break;
    }
  } catch (error) {
    yield errorPart(networkFailure('cohere', error, signal));
    return;
  }
  if (state.ended) {
    // Nothing useful follows message-end; release the connection rather than wait for it to close.
    body.cancel().catch(() => undefined);
    return;
  }
  if (!signal.aborted)
    yield errorPart(upstreamFailure({ provider: 'cohere', status: undefined, reason: 'server_error', message: 'the stream ended before message-end' }));
}

/** The parts of one event, in an array reused from event to event (the caller drains it first). */
function partsFor(event: CohereStreamEvent, state: StreamState): StreamPart[] {
  const parts = state.parts;
  parts.length = 0;
  if (!state.started) {
    state.started = true;
    parts.push({
      type: 'start',
      id: event.type === 'message-start' && typeof event.id === 'string' ? event.id : '',
      model: state.model,
      created: Math.floor(Date.now() / 1000),
    });
  }
  switch (event.type) {
    case 'content-delta':
      contentParts(event, parts);
      break;
    case 'tool-plan-delta':
      state.toolPlan += event.delta?.message?.tool_plan ?? '';
      break;
    case 'tool-call-start':
      parts.push(...toolCallStartParts(event, state));
      break;
    case 'tool-call-delta':
      parts.push(...toolCallDeltaParts(event, state));
      break;
    case 'message-end':
      state.ended = true;
      parts.push(...messageEndParts(event, state));
      break;
    default:
      // message-start (handled above), content-start/-end, tool-call-end, citation-*, debug: nothing to emit.
      break;
  }
  return parts;
}

function contentParts(event: CohereStreamEvent, parts: StreamPart[]): void {
  const content = event.delta?.message?.content;
  if (typeof content?.text === 'string' && content.text.length > 0) parts.push({ type: 'text-delta', index: 0, text: content.text });
  if (typeof content?.thinking === 'string' && content.thinking.length > 0) parts.push({ type: 'reasoning-delta', index: 0, text: content.thinking });
}

function toolCallStartParts(event: CohereStreamEvent, state: StreamState): StreamPart[] {
  // In the stream `tool_calls` is one object, not an array; `index` says which call it is.
  const call = event.delta?.message?.tool_calls;
  const toolIndex = state.nextToolIndex++;
  if (typeof event.index === 'number') state.toolIndexByEventIndex.set(event.index, toolIndex);
  const id = typeof call?.id === 'string' && call.id.length > 0 ? call.id : `call_${toolIndex}`;
  const parts: StreamPart[] = [{ type: 'tool-call-start', index: 0, toolIndex, id, name: call?.function?.name ?? '' }];
  const initialArguments = call?.function?.arguments;
  if (typeof initialArguments === 'string' && initialArguments.length > 0)
    parts.push({ type: 'tool-call-delta', index: 0, toolIndex, argumentsDelta: initialArguments });
  return parts;
}

function toolCallDeltaParts(event: CohereStreamEvent, state: StreamState): StreamPart[] {
  const argumentsDelta = event.delta?.message?.tool_calls?.function?.arguments;
  if (typeof argumentsDelta !== 'string' || argumentsDelta.length === 0) return [];
  const mapped = typeof event.index === 'number' ? state.toolIndexByEventIndex.get(event.index) : undefined;
  const toolIndex = mapped ?? Math.max(0, state.nextToolIndex - 1);
  return [{ type: 'tool-call-delta', index: 0, toolIndex, argumentsDelta }];
}

/**
 * Finish then usage, OpenAI's order. An `error` or an ERROR/TIMEOUT finish ends the stream with an
 * error part instead of a finish that would pass for success; usage still goes first there, so the
 * tokens a failed generation consumed are accounted.
 */
function messageEndParts(event: CohereStreamEvent, state: StreamState): StreamPart[] {
  const delta = event.delta ?? {};
  const parts: StreamPart[] = [];
  const usage = usageFromCohere(delta.usage);
  const extraFields: Record<string, unknown> = {};
  if (state.toolPlan.length > 0) extraFields.tool_plan = state.toolPlan;
  if (delta.usage !== undefined && delta.usage !== null) extraFields.usage_details = delta.usage;
  if (Object.keys(extraFields).length > 0) parts.push({ type: 'extra-fields', fields: extraFields });
  const failed = (typeof delta.error === 'string' && delta.error.length > 0) || delta.finish_reason === 'ERROR' || delta.finish_reason === 'TIMEOUT';
  if (failed) {
    if (usage !== undefined) parts.push({ type: 'usage', usage });
    parts.push(errorPart(cohereGenerationFailure(delta.error ?? undefined, delta.finish_reason)));
    return parts;
  }
  parts.push({ type: 'finish', index: 0, finishReason: mapCohereFinishReason(delta.finish_reason) });
  if (usage !== undefined) parts.push({ type: 'usage', usage });
  return parts;
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}
