// Keyway's results and stream parts in the OpenAI Chat Completions wire shape.

import { openAIErrorBody } from '../errors.ts';
import { openAIFinishReason, openAIUsage } from './openai-shape.ts';
import { flatString } from './flat-string.ts';
import { frameBytes, utf8 } from './frame-bytes.ts';
import { encodeSseData, SSE_DONE } from './sse.ts';
import type { ChatResult, ErrorDescriptor, OpenAIChunk, OpenAIChunkChoice, StreamPart, Usage } from '../spec/vocabulary.ts';

/** The chat.completion for a result: the upstream's own text when it already is one, else an object to serialise. */
export function encodeChatCompletion(result: ChatResult): Record<string, unknown> | string {
  if (result.openAIText !== undefined) return result.openAIText;
  if (result.openAIBody !== undefined) return result.openAIBody;
  return {
    id: result.id,
    object: 'chat.completion',
    created: result.created,
    model: result.model,
    choices: result.choices.map((choice) => ({
      index: choice.index,
      message: { refusal: null, ...choice.message, role: 'assistant', content: choice.message.content ?? null },
      logprobs: choice.logprobs ?? null,
      finish_reason: openAIFinishReason(choice.finishReason),
    })),
    usage: openAIUsage(result.usage),
    ...result.extraFields,
  };
}

const textEncoder = new TextEncoder();
const NO_BYTES = new Uint8Array(0);
/** A text delta's frame around the delta (encodeBytes): the same text as `encode`'s template. */
const CONTENT_DELTA = utf8(',"delta":{"content":');
/**
 * What closes a text delta's chunk after the delta. With include_usage every chunk but the usage
 * chunk carries `"usage":null` (reference §1.4), as OpenAI's own do: chosen once per stream.
 */
const CONTENT_TAIL = '},"logprobs":null,"finish_reason":null}]}\n\n';
const CONTENT_TAIL_WITH_USAGE = '},"logprobs":null,"finish_reason":null}],"usage":null}\n\n';
const CONTENT_END = utf8(CONTENT_TAIL);
const CONTENT_END_WITH_USAGE = utf8(CONTENT_TAIL_WITH_USAGE);

/**
 * Turns stream parts into OpenAI SSE text. Chunks that came from an OpenAI-compatible upstream are
 * forwarded byte for byte; the usage-only chunk reaches the client only if it asked for usage.
 */
export class OpenAIStreamEncoder {
  private id: string;
  private model: string;
  private created: number;
  private usage: Usage | undefined;
  private pendingExtra: Record<string, unknown> | undefined;
  private sawNativeChunks = false;
  /** An upstream chunk carried usage (the usage chunk, or usage on a content chunk): it reached the client as it came. */
  private forwardedUsage = false;
  /** Each choice's reasoning text since its last signature: the thinking block a signature closes. */
  private reasoningSinceSignature: Map<number, string> | undefined;
  /** Choices after the first that have had their opening role chunk (the start part opens choice 0). */
  private openedChoices: Set<number> | undefined;
  private readonly contentTail: string;
  private readonly contentEnd: Uint8Array;

  constructor(
    private readonly includeUsage: boolean,
    requestId: string,
    model: string,
  ) {
    this.id = `chatcmpl-${requestId}`;
    this.model = model;
    this.created = Math.floor(Date.now() / 1000);
    this.contentTail = includeUsage ? CONTENT_TAIL_WITH_USAGE : CONTENT_TAIL;
    this.contentEnd = includeUsage ? CONTENT_END_WITH_USAGE : CONTENT_END;
  }

  /** The SSE text for one part; empty when the part produces nothing for the client. */
  encode(part: StreamPart): string {
    switch (part.type) {
      case 'openai-chunk':
        if (!this.sawNativeChunks) {
          // A usage chunk of Keyway's own (end) names the stream as the upstream's chunks do.
          this.sawNativeChunks = true;
          this.id = part.chunk.id || this.id;
          this.model = part.chunk.model || this.model;
          if (part.chunk.created) this.created = part.chunk.created;
          this.cachedPrefix = undefined;
          this.cachedHead = undefined;
        }
        if (part.chunk.usage) this.forwardedUsage = true;
        if (!this.includeUsage && part.chunk.choices.length === 0 && part.chunk.usage) return '';
        return encodeSseData(part.raw);
      case 'start':
        this.id = part.id || this.id;
        this.model = part.model || this.model;
        if (part.created) this.created = part.created;
        this.cachedPrefix = undefined;
        this.cachedHead = undefined;
        return this.chunk(0, { role: 'assistant', content: '' }, null);
      case 'text-delta':
        if (part.index !== 0 && !this.isOpen(part.index)) return this.openChoice(part.index) + this.encode(part);
        // The common case, built by concatenation: no chunk object, one small stringify.
        if (this.pendingExtra !== undefined) return this.chunk(part.index, { content: part.text }, null);
        return `data: ${this.prefix()}${part.index},"delta":{"content":${JSON.stringify(part.text)}${this.contentTail}`;
      case 'reasoning-delta':
        return this.reasoningDelta(part);
      case 'tool-call-start':
        return (
          this.openChoice(part.index) +
          this.chunk(part.index, { tool_calls: [{ index: part.toolIndex, id: part.id, type: 'function', function: { name: part.name, arguments: '' } }] }, null)
        );
      case 'tool-call-delta':
        return (
          this.openChoice(part.index) + this.chunk(part.index, { tool_calls: [{ index: part.toolIndex, function: { arguments: part.argumentsDelta } }] }, null)
        );
      case 'finish':
        return this.openChoice(part.index) + this.chunk(part.index, {}, openAIFinishReason(part.finishReason));
      case 'usage':
        this.usage = part.usage;
        return '';
      case 'extra-fields':
        this.pendingExtra = { ...this.pendingExtra, ...part.fields };
        return '';
      case 'error':
        return encodeOpenAIStreamError(part.error);
      case 'keepalive':
      // Another dialect's own events never reach the chat dialect (only its own operation asks for them).
      case 'native-event':
        return '';
    }
  }

  /**
   * The bytes `encode` would give as text: a text delta (the common case) written straight to bytes
   * from the stream's constant pieces (frameBytes), anything else its text encoded.
   */
  encodeBytes(part: StreamPart): Uint8Array {
    if (part.type === 'text-delta' && this.pendingExtra === undefined && (part.index === 0 || this.isOpen(part.index))) {
      this.cachedHead ??= utf8(`data: ${this.prefix()}`);
      return frameBytes(this.cachedHead, part.index, CONTENT_DELTA, part.text, this.contentEnd);
    }
    const text = this.encode(part);
    return text === '' ? NO_BYTES : textEncoder.encode(text);
  }

  private cachedHead: Uint8Array | undefined;

  /**
   * Reasoning text goes out as `reasoning_content` pieces. A signature (Anthropic's `signature_delta`,
   * which closes a thinking block) goes out as `thinking_blocks` with the whole block, LiteLLM's shape
   * and the non-streamed answer's: a client replays it on the next turn, and a tool loop needs it.
   * The block carries its whole text, not an empty one as LiteLLM's signature chunk does: the openai
   * SDK's accumulator keeps only the last value of a field it does not know, and Anthropic checks the
   * signature against the text; LiteLLM's own accumulator, which joins the texts of the streamed
   * blocks, gets the same block, since no other chunk carries `thinking_blocks`. No chunk carries an
   * empty `reasoning_content`: that same accumulator would end the stream with `""`.
   */
  private reasoningDelta(part: Extract<StreamPart, { type: 'reasoning-delta' }>): string {
    let output = '';
    if (part.text !== '') {
      output += this.openChoice(part.index) + this.chunk(part.index, { reasoning_content: part.text }, null);
      this.reasoningSinceSignature ??= new Map();
      this.reasoningSinceSignature.set(part.index, (this.reasoningSinceSignature.get(part.index) ?? '') + part.text);
    }
    if (part.signature !== undefined && part.signature !== '') {
      const thinking = this.reasoningSinceSignature?.get(part.index) ?? '';
      this.reasoningSinceSignature?.delete(part.index);
      output += this.openChoice(part.index) + this.chunk(part.index, { thinking_blocks: [{ type: 'thinking', thinking, signature: part.signature }] }, null);
    }
    return output;
  }

  /**
   * Closes a stream that ended well: the usage chunk if asked for, then `[DONE]`. A chunk without
   * choices is OpenAI's usage chunk, which a client that did not ask for usage never sees (it reads
   * `choices[0]` of every chunk): extra fields still pending ride on the usage chunk or are left out,
   * so a provider sends its extras before its finish.
   */
  end(): string {
    // An upstream's own usage chunk was forwarded as it came; without one, the usage Keyway booked is shown (respond.ts).
    if (this.forwardedUsage || !this.includeUsage || this.usage === undefined) return SSE_DONE;
    return this.frame({ choices: [], usage: openAIUsage(this.usage) }) + SSE_DONE;
  }

  private cachedPrefix: string | undefined;

  /** Everything of a content chunk before the choice index, the same for the whole stream. */
  private prefix(): string {
    this.cachedPrefix ??= flatString(
      `${JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model }).slice(0, -1)},"choices":[{"index":`,
    );
    return this.cachedPrefix;
  }

  private isOpen(index: number): boolean {
    return index === 0 || this.openedChoices?.has(index) === true;
  }

  /**
   * The role chunk that opens a choice after the first, before its first content: OpenAI's first
   * chunk of every choice carries `role` (reference §1.4), and the openai SDK's stream helper refuses
   * a choice without one. Empty once the choice is open.
   */
  private openChoice(index: number): string {
    if (this.isOpen(index)) return '';
    this.openedChoices ??= new Set();
    this.openedChoices.add(index);
    return this.chunk(index, { role: 'assistant', content: '' }, null);
  }

  private chunk(index: number, delta: OpenAIChunkChoice['delta'], finishReason: string | null): string {
    return this.frame({ choices: [{ index, delta, logprobs: null, finish_reason: finishReason }] });
  }

  private frame(fields: Partial<OpenAIChunk>): string {
    const chunk: Record<string, unknown> = { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, ...fields };
    if (this.includeUsage && chunk.usage === undefined) chunk.usage = null;
    if (this.pendingExtra !== undefined) {
      Object.assign(chunk, this.pendingExtra);
      this.pendingExtra = undefined;
    }
    return encodeSseData(JSON.stringify(chunk));
  }
}

/** A failure after the first byte: an error event and no `[DONE]`, as the spec says. */
export function encodeOpenAIStreamError(error: ErrorDescriptor): string {
  return encodeSseData(JSON.stringify(openAIErrorBody(error)));
}
