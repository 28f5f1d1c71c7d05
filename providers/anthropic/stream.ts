import type { KeywayError } from '../../core/errors.ts';
import { networkFailure, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { StreamPart, Usage } from '../../core/spec/vocabulary.ts';
import { classifyAnthropicStreamError } from './errors.ts';
import { mapAnthropicStopReason } from './finish-reason.ts';
import { mergeStreamUsage, usageFromAnthropic, type AnthropicUsage } from './usage.ts';

const PROVIDER = 'anthropic';
/** Marks a content block that is not a client tool call (text, thinking, server tools). */
const NOT_A_TOOL = -1;

type Payload = Record<string, unknown>;

/**
 * The state one Anthropic stream needs: its input usage from `message_start`, and which content
 * blocks are tool calls. Anthropic's block `index` counts every block, text included, while an
 * OpenAI tool index counts tool calls only, so each tool block gets the next tool index.
 */
class AnthropicStreamTranslator {
  private startUsage: AnthropicUsage | undefined;
  /** A message_delta came: it carried the stream's usage. */
  private sawMessageDelta = false;
  /** A finish part went out (message_delta's stop reason). */
  private finished = false;
  private readonly toolIndexByBlock: number[] = [];
  private nextToolIndex = 0;

  messageStart(payload: Payload, out: StreamPart[]): void {
    const message = (payload.message ?? {}) as Payload;
    this.startUsage = message.usage as AnthropicUsage | undefined;
    const start: StreamPart = {
      type: 'start',
      id: typeof message.id === 'string' ? message.id : '',
      model: typeof message.model === 'string' ? message.model : '',
      created: Math.floor(Date.now() / 1000),
    };
    if (this.startUsage !== undefined && this.startUsage !== null) start.promptUsage = promptUsageOf(usageFromAnthropic(this.startUsage));
    out.push(start);
  }

  blockStart(payload: Payload, out: StreamPart[]): void {
    const blockIndex = Number(payload.index);
    const block = (payload.content_block ?? {}) as Payload;
    this.toolIndexByBlock[blockIndex] = NOT_A_TOOL;
    if (block.type === 'tool_use') {
      const toolIndex = this.nextToolIndex++;
      this.toolIndexByBlock[blockIndex] = toolIndex;
      out.push({ type: 'tool-call-start', index: 0, toolIndex, id: String(block.id ?? ''), name: String(block.name ?? '') });
      // The start normally carries `input: {}`; a gateway that sends the whole input up front still counts.
      const input = block.input as Payload | undefined;
      if (input !== undefined && Object.keys(input).length > 0)
        out.push({ type: 'tool-call-delta', index: 0, toolIndex, argumentsDelta: JSON.stringify(input) });
    } else if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') {
      out.push({ type: 'text-delta', index: 0, text: block.text });
    } else if (block.type === 'thinking' && typeof block.thinking === 'string' && block.thinking !== '') {
      out.push({ type: 'reasoning-delta', index: 0, text: block.thinking });
    }
  }

  blockDelta(payload: Payload, out: StreamPart[]): void {
    const delta = (payload.delta ?? {}) as Payload;
    switch (delta.type) {
      case 'text_delta':
        out.push({ type: 'text-delta', index: 0, text: String(delta.text ?? '') });
        return;
      case 'input_json_delta': {
        const toolIndex = this.toolIndexByBlock[Number(payload.index)] ?? NOT_A_TOOL;
        // Server-tool blocks stream their input too; only client tool calls reach the client.
        if (toolIndex !== NOT_A_TOOL) out.push({ type: 'tool-call-delta', index: 0, toolIndex, argumentsDelta: String(delta.partial_json ?? '') });
        return;
      }
      case 'thinking_delta':
        out.push({ type: 'reasoning-delta', index: 0, text: String(delta.thinking ?? '') });
        return;
      case 'signature_delta':
        out.push({ type: 'reasoning-delta', index: 0, text: '', signature: String(delta.signature ?? '') });
        return;
      default:
        // citations_delta and future delta types carry nothing the OpenAI shape can hold.
        return;
    }
  }

  messageDelta(payload: Payload, out: StreamPart[]): void {
    this.sawMessageDelta = true;
    const delta = (payload.delta ?? {}) as Payload;
    if (typeof delta.stop_reason === 'string') {
      this.finished = true;
      out.push({ type: 'finish', index: 0, finishReason: mapAnthropicStopReason(delta.stop_reason, delta.stop_sequence) });
    }
    out.push({ type: 'usage', usage: usageFromAnthropic(mergeStreamUsage(this.startUsage, payload.usage as AnthropicUsage | undefined)) });
  }

  /**
   * message_stop without a message_delta (a proxy that drops it, a compatible server that never sends
   * it), or with one that named no stop reason: the stream still ended cleanly, so it closes as a normal
   * one does. Nothing said the turn ended otherwise, so the finish is a plain stop with no raw reason.
   * Without a message_delta, the prompt's counts are message_start's and the output count (message_start's
   * is a placeholder) is named unreported, for the account stage to book Keyway's estimate of what
   * streamed and show it as the closing usage (core/lifecycle/respond.ts).
   */
  messageStop(out: StreamPart[]): void {
    if (!this.finished) out.push({ type: 'finish', index: 0, finishReason: { unified: 'stop', raw: undefined } });
    if (!this.sawMessageDelta)
      out.push({ type: 'usage', usage: usageFromAnthropic({ ...mergeStreamUsage(this.startUsage, undefined), output_tokens: undefined }) });
  }
}

const KEEPALIVE: StreamPart = { type: 'keepalive' };

/** The input side of a usage: what message_start knows before any output. */
function promptUsageOf(usage: Usage): Usage {
  return { ...usage, outputTokens: 0, reasoningTokens: 0, totalTokens: usage.inputTokens };
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}

/** What one event means: parts to emit, and whether the stream ended (cleanly or with an error). */
type EventOutcome = 'continue' | 'stopped' | 'failed';

function translateEvent(translator: AnthropicStreamTranslator, payload: Payload, out: StreamPart[]): EventOutcome {
  switch (payload.type) {
    case 'message_start':
      translator.messageStart(payload, out);
      return 'continue';
    case 'content_block_start':
      translator.blockStart(payload, out);
      return 'continue';
    case 'content_block_delta':
      translator.blockDelta(payload, out);
      return 'continue';
    case 'message_delta':
      translator.messageDelta(payload, out);
      return 'continue';
    case 'message_stop':
      translator.messageStop(out);
      return 'stopped';
    case 'ping':
      out.push(KEEPALIVE);
      return 'continue';
    case 'error':
      out.push(errorPart(classifyAnthropicStreamError(payload)));
      return 'failed';
    default:
      // content_block_stop and event types added later carry nothing to translate.
      return 'continue';
  }
}

function parsePayload(data: string): Payload | undefined {
  try {
    const parsed = JSON.parse(data) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Payload) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * For the Messages dialect's own API: each event as it came (`native-event`, with the text it
 * generated), and of its parts only those the books and the runner need (start, usage, finish, errors).
 */
function* asNative(payload: Payload, raw: string, parts: readonly StreamPart[]): Generator<StreamPart> {
  let text = '';
  for (const part of parts) {
    if (part.type === 'start') yield { ...part, native: true };
    else if (part.type === 'usage' || part.type === 'finish' || part.type === 'error') yield part;
    else if (part.type === 'text-delta' || part.type === 'reasoning-delta') text += part.text;
    else if (part.type === 'tool-call-delta') text += part.argumentsDelta;
  }
  // An error event is written by the dialect from its error part, in the dialect's shape.
  if (payload.type === 'error') return;
  const event: StreamPart = { type: 'native-event', event: String(payload.type), data: payload, raw };
  if (text !== '') event.text = text;
  else if (isOpeningEvent(payload, parts)) event.noContent = true;
  yield event;
}

/**
 * An event that carries nothing generated: message_start, a ping, the start of an empty text or
 * thinking block (a tool's block start names the tool: content). Keyway may hold it back a moment
 * after the stream opens, so an error right after it can still fall back (core/lifecycle/opening-hold.ts).
 */
function isOpeningEvent(payload: Payload, parts: readonly StreamPart[]): boolean {
  if (payload.type === 'message_start' || payload.type === 'ping') return true;
  if (payload.type !== 'content_block_start' || parts.length > 0) return false;
  const block = payload.content_block as Payload | undefined;
  return block?.type === 'text' || block?.type === 'thinking';
}

/**
 * Turns an Anthropic SSE body into stream parts. An `error` event (possible after HTTP 200) or a
 * stream that ends before `message_stop` ends the parts with an error part. `native`: the events
 * themselves are passed on too, for a client that speaks Anthropic's Messages API (asNative).
 */
export async function* anthropicStreamParts(body: ReadableStream<Uint8Array>, signal: AbortSignal, native = false): AsyncGenerator<StreamPart> {
  const translator = new AnthropicStreamTranslator();
  // One array reused for every event: most events yield a single part.
  const out: StreamPart[] = [];
  let outcome: EventOutcome = 'continue';
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data.length === 0) continue;
      const payload = parsePayload(event.data);
      if (payload === undefined) {
        yield errorPart(
          upstreamFailure({ provider: PROVIDER, status: undefined, reason: 'server_error', message: 'the stream carried an event that is not JSON' }),
        );
        return;
      }
      // The `event:` line and the payload's `type` agree on Anthropic; the line is the fallback. An
      // unnamed `{"error": …}` (as OpenAI-style streams send) is an error all the same: the one error path scrubs it.
      if (typeof payload.type !== 'string' || payload.type === '')
        payload.type = event.event || (typeof payload.error === 'object' && payload.error !== null ? 'error' : undefined);
      // An event that names no type translates to nothing, and passed on it would be written with no usable name.
      if (payload.type === undefined) continue;
      out.length = 0;
      outcome = translateEvent(translator, payload, out);
      if (native) yield* asNative(payload, event.data, out);
      else for (const part of out) yield part;
      if (outcome !== 'continue') break;
    }
  } catch (error) {
    yield errorPart(networkFailure(PROVIDER, error, signal));
    return;
  }
  if (outcome === 'continue' && !signal.aborted) {
    yield errorPart(upstreamFailure({ provider: PROVIDER, status: undefined, reason: 'server_error', message: 'the stream ended before message_stop' }));
  }
}
