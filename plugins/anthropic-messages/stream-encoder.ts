// StreamParts from any provider → the exact Anthropic SSE sequence:
//   message_start, (content_block_start, content_block_delta…, content_block_stop)…, message_delta, message_stop
// or, on a failure, `event: error`. One block is open at a time; a part of another kind closes it.
// When Anthropic's own Messages API serves (a `start` part marked native, then `native-event` parts),
// its events pass as they came and the encoder adds nothing but an error event.

import { anthropicErrorBody } from './errors.ts';
import { encodeSseEvent } from '../../core/wire/sse.ts';
import type { ErrorDescriptor, StreamPart, Usage } from '../../core/spec/vocabulary.ts';
import { FirstChoiceStreamEncoder } from '../../core/wire/first-choice-encoder.ts';
import { anthropicUsageFromUsage, newMessageId, stopReasonFromFinish, stopSequenceFromFinish } from './response.ts';

const PING = encodeSseEvent('ping', '{"type":"ping"}');
const MESSAGE_STOP = encodeSseEvent('message_stop', '{"type":"message_stop"}');

export interface AnthropicStreamEncoderOptions {
  /** The model to name when the upstream's first part does not (an `openai-chunk` without one). */
  model: string;
  /** Keyway's request id, echoed in error events as Anthropic does. */
  requestId: string;
  /** The request's stop sequences, to name the one that matched when the provider did not. */
  stopSequences?: readonly string[];
}

type BlockKind = 'text' | 'thinking' | 'tool_use';

interface OpenBlock {
  kind: BlockKind;
  index: number;
  /** For tool_use blocks: the OpenAI tool index the block carries. */
  toolIndex: number;
}

export class AnthropicStreamEncoder extends FirstChoiceStreamEncoder {
  private readonly options: AnthropicStreamEncoderOptions;
  private started = false;
  private open: OpenBlock | undefined;
  private nextBlockIndex = 0;
  /** An OpenAI refusal came: the turn ends with stop_reason `refusal` whatever the finish reason said. */
  private refused = false;
  /** Anthropic's own events are passed on: they open and close the message themselves. */
  private native = false;
  /** Of Anthropic's own events: a message_delta passed (it carries the stop reason and usage). */
  private nativeDelta = false;
  /** Of Anthropic's own events: a message_stop came with no message_delta before it, held for `end`. */
  private heldStop = false;
  /** Of Anthropic's own events: the message_stop passed. */
  private nativeStop = false;

  constructor(options: AnthropicStreamEncoderOptions) {
    super();
    this.options = options;
  }

  override encode(part: StreamPart): string {
    if (part.type === 'native-event') {
      if (this.ended) return '';
      this.native = true;
      if (part.event === 'message_delta') this.nativeDelta = true;
      if (part.event === 'message_stop') this.nativeStop = true;
      // Written by `end`, after the message_delta the stream lacked, once the booked usage is known.
      if (part.event === 'message_stop' && !this.nativeDelta) {
        this.heldStop = true;
        return '';
      }
      // Anthropic writes one data line an event; anything else is written anew as one.
      return encodeSseEvent(part.event, part.raw.includes('\n') ? JSON.stringify(part.data) : part.raw);
    }
    if (part.type === 'start' && part.native === true) {
      this.native = true;
      this.started = true;
      return '';
    }
    return super.encode(part);
  }

  /**
   * Closes the message once the upstream parts are exhausted; empty after an error, or when Anthropic's
   * events closed it. Anthropic's events that ended without a message_delta (the provider's reader gave
   * the finish and usage parts in its place) get one here, with the usage booked for them: the SDK
   * reads the stop reason and the output count from it. Anthropic's events closed by Keyway after their
   * message_delta (the shutdown drain ends a stream whose answer is out, core/lifecycle/respond.ts) get
   * the message_stop that had not come.
   */
  end(): string {
    if (this.ended) return '';
    this.ended = true;
    if (this.native && !this.heldStop) return this.nativeDelta && !this.nativeStop ? MESSAGE_STOP : '';
    return this.start('', this.options.model) + this.closeBlock() + this.closingEvents();
  }

  private closingEvents(): string {
    const usage = anthropicUsageFromUsage(this.usage);
    const delta = {
      stop_reason: this.refused ? 'refusal' : stopReasonFromFinish(this.finishReason),
      stop_sequence: stopSequenceFromFinish(this.finishReason, this.options.stopSequences ?? []),
    };
    return encodeSseEvent('message_delta', JSON.stringify({ type: 'message_delta', delta, usage })) + MESSAGE_STOP;
  }

  protected start(id: string, model: string, promptUsage?: Usage): string {
    if (this.started) return '';
    this.started = true;
    const message = {
      id: id === '' ? newMessageId() : id,
      type: 'message',
      role: 'assistant',
      model: model === '' ? this.options.model : model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // The prompt's count when the upstream gave it before any content (Anthropic, Gemini); OpenAI-shaped
      // upstreams count only at the end, so 0 there. The closing message_delta carries the totals either way.
      usage: anthropicUsageFromUsage(promptUsage),
    };
    return encodeSseEvent('message_start', JSON.stringify({ type: 'message_start', message }));
  }

  protected override keepalive(): string {
    // Anthropic sends ping after message_start; one that came earlier waits for it.
    return this.start('', this.options.model) + PING;
  }

  protected closeOpen(): string {
    return this.closeBlock();
  }

  private closeBlock(): string {
    if (this.open === undefined) return '';
    const index = this.open.index;
    this.open = undefined;
    return encodeSseEvent('content_block_stop', `{"type":"content_block_stop","index":${index}}`);
  }

  /** Opens a block of `kind` unless one is already open; answers the SSE text that took. */
  private openBlock(kind: BlockKind, contentBlock: Record<string, unknown>, toolIndex = -1): string {
    const prefix = this.start('', this.options.model) + this.closeBlock();
    this.open = { kind, index: this.nextBlockIndex++, toolIndex };
    return prefix + encodeSseEvent('content_block_start', JSON.stringify({ type: 'content_block_start', index: this.open.index, content_block: contentBlock }));
  }

  private delta(delta: Record<string, unknown>): string {
    return encodeSseEvent('content_block_delta', JSON.stringify({ type: 'content_block_delta', index: this.open?.index ?? 0, delta }));
  }

  protected text(text: string): string {
    if (text === '') return '';
    const opening = this.open?.kind === 'text' ? '' : this.openBlock('text', { type: 'text', text: '' });
    return opening + this.delta({ type: 'text_delta', text });
  }

  protected override refusal(text: string): string {
    this.refused = true;
    return this.text(text);
  }

  protected reasoning(text: string, signature: string | undefined): string {
    const hasSignature = signature !== undefined && signature !== '';
    if (text === '' && !hasSignature) return '';
    let output = this.open?.kind === 'thinking' ? '' : this.openBlock('thinking', { type: 'thinking', thinking: '', signature: '' });
    if (text !== '') output += this.delta({ type: 'thinking_delta', thinking: text });
    if (hasSignature) output += this.delta({ type: 'signature_delta', signature });
    return output;
  }

  protected toolStart(toolIndex: number, id: string, name: string): string {
    return this.openBlock('tool_use', { type: 'tool_use', id, name, input: {} }, toolIndex);
  }

  protected toolDelta(toolIndex: number, argumentsDelta: string): string {
    // Anthropic cannot reopen a closed block, so fragments for any other call are dropped; OpenAI
    // upstreams send each call's fragments together, so this does not happen in practice.
    if (argumentsDelta === '' || this.open?.kind !== 'tool_use' || this.open.toolIndex !== toolIndex) return '';
    return this.delta({ type: 'input_json_delta', partial_json: argumentsDelta });
  }

  protected error(descriptor: ErrorDescriptor): string {
    this.ended = true;
    return encodeSseEvent('error', JSON.stringify(anthropicErrorBody(descriptor, this.options.requestId)));
  }

  /** An OpenAI-compatible upstream's chunk, read through the same paths as native parts. */
}
