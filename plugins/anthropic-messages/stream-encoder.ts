// StreamParts from any provider → the exact Anthropic SSE sequence:
//   message_start, (content_block_start, content_block_delta…, content_block_stop)…, message_delta, message_stop
// or, on a failure, `event: error`. One block is open at a time; a part of another kind closes it.

import { anthropicErrorBody } from './errors.ts';
import { encodeSseEvent } from '../../core/wire/sse.ts';
import type { ErrorDescriptor, FinishReason, OpenAIChunk, StreamPart, Usage } from '../../core/spec/vocabulary.ts';
import { finishReasonFromOpenAI, usageFromOpenAI } from '../../core/wire/openai-shape.ts';
import { anthropicUsageFromUsage, newMessageId, stopReasonFromFinish } from './response.ts';

const PING = encodeSseEvent('ping', '{"type":"ping"}');

export interface AnthropicStreamEncoderOptions {
  /** The model to name when the upstream's first part does not (an `openai-chunk` without one). */
  model: string;
  /** Keyway's request id, echoed in error events as Anthropic does. */
  requestId: string;
}

type BlockKind = 'text' | 'thinking' | 'tool_use';

interface OpenBlock {
  kind: BlockKind;
  index: number;
  /** For tool_use blocks: the OpenAI tool index the block carries. */
  toolIndex: number;
}

export class AnthropicStreamEncoder {
  private readonly options: AnthropicStreamEncoderOptions;
  private started = false;
  private ended = false;
  private open: OpenBlock | undefined;
  private nextBlockIndex = 0;
  private finishReason: FinishReason | undefined;
  private usage: Usage | undefined;

  constructor(options: AnthropicStreamEncoderOptions) {
    this.options = options;
  }

  /** The SSE text for one part; empty when the part only updates state (usage, finish). */
  encode(part: StreamPart): string {
    if (this.ended) return '';
    switch (part.type) {
      case 'start':
        return this.start(part.id, part.model, part.promptUsage);
      case 'keepalive':
        // Anthropic sends ping after message_start; one that came earlier waits for it.
        return this.start('', this.options.model) + PING;
      case 'text-delta':
        return part.index === 0 ? this.text(part.text) : '';
      case 'reasoning-delta':
        return part.index === 0 ? this.reasoning(part.text, part.signature) : '';
      case 'tool-call-start':
        return part.index === 0 ? this.toolStart(part.toolIndex, part.id, part.name) : '';
      case 'tool-call-delta':
        return part.index === 0 ? this.toolDelta(part.toolIndex, part.argumentsDelta) : '';
      case 'finish':
        if (part.index !== 0) return '';
        this.finishReason = part.finishReason;
        return this.closeBlock();
      case 'usage':
        this.usage = part.usage;
        return '';
      case 'openai-chunk':
        return this.openAIChunk(part.chunk);
      case 'error':
        return this.error(part.error);
      default:
        return '';
    }
  }

  /** Closes the message once the upstream parts are exhausted; empty after an error. */
  end(): string {
    if (this.ended) return '';
    this.ended = true;
    const usage = anthropicUsageFromUsage(this.usage);
    return (
      this.start('', this.options.model) +
      this.closeBlock() +
      encodeSseEvent(
        'message_delta',
        JSON.stringify({ type: 'message_delta', delta: { stop_reason: stopReasonFromFinish(this.finishReason), stop_sequence: null }, usage }),
      ) +
      encodeSseEvent('message_stop', '{"type":"message_stop"}')
    );
  }

  private start(id: string, model: string, promptUsage?: Usage): string {
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

  private text(text: string): string {
    if (text === '') return '';
    const opening = this.open?.kind === 'text' ? '' : this.openBlock('text', { type: 'text', text: '' });
    return opening + this.delta({ type: 'text_delta', text });
  }

  private reasoning(text: string, signature: string | undefined): string {
    const hasSignature = signature !== undefined && signature !== '';
    if (text === '' && !hasSignature) return '';
    let output = this.open?.kind === 'thinking' ? '' : this.openBlock('thinking', { type: 'thinking', thinking: '', signature: '' });
    if (text !== '') output += this.delta({ type: 'thinking_delta', thinking: text });
    if (hasSignature) output += this.delta({ type: 'signature_delta', signature });
    return output;
  }

  private toolStart(toolIndex: number, id: string, name: string): string {
    return this.openBlock('tool_use', { type: 'tool_use', id, name, input: {} }, toolIndex);
  }

  private toolDelta(toolIndex: number, argumentsDelta: string): string {
    // Anthropic cannot reopen a closed block, so fragments for any other call are dropped; OpenAI
    // upstreams send each call's fragments together, so this does not happen in practice.
    if (argumentsDelta === '' || this.open?.kind !== 'tool_use' || this.open.toolIndex !== toolIndex) return '';
    return this.delta({ type: 'input_json_delta', partial_json: argumentsDelta });
  }

  private error(descriptor: ErrorDescriptor): string {
    this.ended = true;
    return encodeSseEvent('error', JSON.stringify(anthropicErrorBody(descriptor, this.options.requestId)));
  }

  /** An OpenAI-compatible upstream's chunk, read through the same paths as native parts. */
  private openAIChunk(chunk: OpenAIChunk): string {
    let output = this.start(chunk.id ?? '', chunk.model ?? '');
    const choice = chunk.choices?.find((candidate) => candidate.index === 0);
    if (choice !== undefined) {
      const delta = choice.delta ?? {};
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') output += this.reasoning(delta.reasoning_content, undefined);
      if (typeof delta.content === 'string') output += this.text(delta.content);
      for (const call of delta.tool_calls ?? []) {
        if (call.id !== undefined && call.function?.name !== undefined) output += this.toolStart(call.index, call.id, call.function.name);
        if (call.function?.arguments) output += this.toolDelta(call.index, call.function.arguments);
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        this.finishReason = finishReasonFromOpenAI(choice.finish_reason);
        output += this.closeBlock();
      }
    }
    const usage = usageFromOpenAI(chunk.usage);
    if (usage !== undefined) this.usage = usage;
    return output;
  }
}
