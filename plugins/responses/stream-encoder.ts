// StreamParts from any provider → the Responses API's typed SSE events, in the documented order:
//   response.created, response.in_progress,
//   per output item: response.output_item.added, (content_part.added, output_text.delta…, output_text.done,
//   content_part.done | reasoning_summary_part.added, reasoning_summary_text.delta…, …done |
//   function_call_arguments.delta…, function_call_arguments.done), response.output_item.done,
//   then response.completed (or response.incomplete); on a failure response.failed and `error`.
// One output item is open at a time; a part of another kind closes it. Every event carries a
// sequence_number counting from 0.
// When the provider's own Responses API serves (a `start` part marked native, then `native-event`
// parts), its events pass through as they came; only the response object's Keyway side (store,
// previous_response_id, metadata: native.ts) is rewritten, in the few events that carry it.

import { flatString } from '../../core/wire/flat-string.ts';
import { frameBytes, utf8 } from '../../core/wire/frame-bytes.ts';
import { encodeSseEvent } from '../../core/wire/sse.ts';
import { FirstChoiceStreamEncoder } from '../../core/wire/first-choice-encoder.ts';
import type { ErrorDescriptor, StreamPart } from '../../core/spec/vocabulary.ts';
import { NativeItemIds, withKeywayEcho, type KeywayEcho } from './native.ts';
import { customInputFromArguments } from './request.ts';
import {
  customToolCallItem,
  functionCallItem,
  ItemIds,
  messageItem,
  reasoningItem,
  responseObject,
  responsesUsageFromUsage,
  statusFromFinish,
  withProviderFields,
  type ResponseEcho,
  type ResponseShell,
} from './response.ts';

type Json = Record<string, unknown>;

interface OpenItem {
  /** custom_tool_call: a custom tool's call, its input held until the call is whole (it arrives inside JSON arguments). */
  kind: 'message' | 'reasoning' | 'function_call' | 'custom_tool_call';
  id: string;
  outputIndex: number;
  /**
   * Text, reasoning summary or arguments so far, as its deltas: joined once when the item closes (a
   * string grown by += allocates a rope node per delta that lives as long as the stream).
   */
  parts: string[];
  /** function_call only. */
  toolIndex: number;
  callId: string;
  name: string;
  /** Everything of this item's delta events after the sequence number and before the delta, built once. */
  deltaMiddle: string;
  deltaPrefix: string;
  /** The same two pieces as UTF-8, for the delta events written straight to bytes. */
  deltaMiddleBytes: Uint8Array;
  deltaPrefixBytes: Uint8Array;
}

const DELTA_TYPES: Record<OpenItem['kind'], string> = {
  message: 'response.output_text.delta',
  reasoning: 'response.reasoning_summary_text.delta',
  function_call: 'response.function_call_arguments.delta',
  custom_tool_call: 'response.custom_tool_call_input.delta',
};

const DELTA_PREFIX: Record<OpenItem['kind'], string> = {
  message: flatString(`event: ${DELTA_TYPES.message}\ndata: {"type":"${DELTA_TYPES.message}","sequence_number":`),
  reasoning: flatString(`event: ${DELTA_TYPES.reasoning}\ndata: {"type":"${DELTA_TYPES.reasoning}","sequence_number":`),
  function_call: flatString(`event: ${DELTA_TYPES.function_call}\ndata: {"type":"${DELTA_TYPES.function_call}","sequence_number":`),
  custom_tool_call: flatString(`event: ${DELTA_TYPES.custom_tool_call}\ndata: {"type":"${DELTA_TYPES.custom_tool_call}","sequence_number":`),
};

const DELTA_PREFIX_BYTES: Record<OpenItem['kind'], Uint8Array> = {
  message: utf8(DELTA_PREFIX.message),
  reasoning: utf8(DELTA_PREFIX.reasoning),
  function_call: utf8(DELTA_PREFIX.function_call),
  custom_tool_call: utf8(DELTA_PREFIX.custom_tool_call),
};

/** What closes a delta event after the delta. */
const DELTA_END_BYTES = utf8('}\n\n');
const NO_BYTES = new Uint8Array(0);
const textEncoder = new TextEncoder();

/** The fields each kind's delta event carries between the item's place and the delta. */
const DELTA_FIELDS: Record<OpenItem['kind'], string> = {
  message: '"content_index":0,"logprobs":[],',
  reasoning: '"summary_index":0,',
  function_call: '',
  custom_tool_call: '',
};

/**
 * Sequence numbers as text, made once per process: converting a number costs about a third of what a
 * text delta's whole event costs to build (bench/responses-chunk-ab.ts). Streams past the cache convert.
 */
const SEQUENCE_TEXT: string[] = [];
const CACHED_SEQUENCES = 4096;

function sequenceText(sequence: number): string {
  if (sequence >= CACHED_SEQUENCES) return String(sequence);
  const cached = SEQUENCE_TEXT[sequence];
  if (cached !== undefined) return cached;
  const text = String(sequence);
  SEQUENCE_TEXT[sequence] = text;
  return text;
}

/** What JSON.stringify would escape: quotes, backslashes, control characters, surrogates (lone ones are escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export interface ResponsesStreamEncoderOptions {
  responseId: string;
  model: string;
  echo: ResponseEcho;
  /** What a native answer's response object says that Keyway decides; absent: taken from `echo`. */
  keywayEcho?: KeywayEcho;
  /** Names of the request's custom tools: their calls are custom_tool_call items. */
  customTools?: ReadonlySet<string>;
  /**
   * Called with the final response of a stream that ended well (completed or incomplete); what it
   * returns, the stored response's write, holds the final event back (settle). When the write resolves
   * false (it failed), the final event is made again, saying `store: false`.
   */
  onComplete?: (response: Json) => Promise<boolean> | undefined | void;
}

/** The final event made again (`remade`) when the stored response's write resolved false, else undefined. */
function whenNotStored(written: Promise<boolean> | undefined | void, remade: () => string): Promise<string | undefined> | undefined {
  return written === undefined ? undefined : written.then((stored) => (stored ? undefined : remade()));
}

export class ResponsesStreamEncoder extends FirstChoiceStreamEncoder {
  private readonly shell: ResponseShell;
  private readonly customTools: ReadonlySet<string>;
  private readonly onComplete: ResponsesStreamEncoderOptions['onComplete'];
  /**
   * What the final event waits for (the stored response's write), until settle hands it over: it
   * resolves to the final event to send instead (`store: false`) when the write failed.
   */
  private completing: Promise<string | undefined> | undefined;
  private readonly ids: ItemIds;
  private sequence = 0;
  private started = false;
  private open: OpenItem | undefined;
  private readonly output: Json[] = [];
  private readonly keywayEcho: KeywayEcho;
  /** Set once the provider's own events are passing: this encoder then writes only what Keyway adds. */
  private native = false;
  /** The provider's latest response object (native), for a failure it did not report itself. */
  private nativeResponse: Json | undefined;
  private nativeFailed = false;
  /** The native answer's item ids as Keyway's, once its response id is known. */
  private nativeIds: NativeItemIds | undefined;
  /** A provider's own answer fields (Perplexity's citations), for the final response object. */
  private fieldsOfProvider: Record<string, unknown> | undefined;

  constructor(options: ResponsesStreamEncoderOptions) {
    super();
    this.customTools = options.customTools ?? new Set();
    this.onComplete = options.onComplete;
    this.ids = new ItemIds(options.responseId);
    this.shell = { id: options.responseId, createdAt: Math.floor(Date.now() / 1000), model: options.model, echo: options.echo };
    const { store, previous_response_id, metadata } = options.echo;
    this.keywayEcho = options.keywayEcho ?? { store, previous_response_id, metadata };
  }

  override encode(part: StreamPart): string {
    // An event without a type has no name to be written under (an `event: ` line with nothing after it).
    if (part.type === 'native-event') return this.ended || part.event === '' ? '' : this.nativeEvent(part.event, part.data, part.raw);
    if (part.type === 'start' && part.native === true) {
      this.native = true;
      this.started = true;
      return '';
    }
    return super.encode(part);
  }

  /** A provider's own event: as it came, but for the response object's Keyway side. */
  private nativeEvent(type: string, data: Json, raw: string): string {
    this.native = true;
    this.started = true;
    if (typeof data.sequence_number === 'number') this.sequence = data.sequence_number + 1;
    const response = data.response;
    if (typeof response !== 'object' || response === null) {
      if (type === 'response.output_item.added') this.nativeIds?.name(data.item);
      const text = this.nativeIds === undefined ? raw : type.endsWith('.delta') ? this.nativeIds.rewriteItem(raw, data.item_id) : this.nativeIds.rewrite(raw);
      if (type === 'response.output_item.done' && typeof data.item === 'object' && data.item !== null) this.output.push(JSON.parse(text).item as Json);
      return `event: ${type}\ndata: ${text}\n\n`;
    }
    if (typeof (response as Json).id === 'string') this.nativeIds ??= new NativeItemIds((response as Json).id as string);
    this.nativeIds?.nameOutput(response as Json);
    // A failed response is not kept: its `store` says so.
    const echo = type === 'response.failed' ? { ...this.keywayEcho, store: false } : this.keywayEcho;
    const text = this.nativeIds?.rewrite(JSON.stringify({ ...data, response: withKeywayEcho(response as Json, echo) })) ?? '';
    const patched = (JSON.parse(text) as { response: Json }).response;
    this.nativeResponse = patched;
    if (type === 'response.completed' || type === 'response.incomplete') {
      this.ended = true;
      this.completing = whenNotStored(this.onComplete?.(patched), () =>
        encodeSseEvent(type, JSON.stringify({ ...(JSON.parse(text) as Json), response: { ...patched, store: false } })),
      );
    } else if (type === 'response.failed') this.nativeFailed = true;
    return encodeSseEvent(type, text);
  }

  /** A failure in a native stream: the provider's `response.failed` if it sent one, else Keyway's, then `error`. */
  private nativeError(descriptor: ErrorDescriptor): string {
    this.ended = true;
    let text = '';
    if (!this.nativeFailed) {
      const response = {
        ...(this.nativeResponse ?? {}),
        status: 'failed',
        output: this.output,
        error: { code: descriptor.code, message: descriptor.message },
        store: false,
      };
      text = this.event('response.failed', { response });
    }
    return text + this.event('error', { code: descriptor.code, message: descriptor.message, param: descriptor.param ?? null });
  }

  /** The SSE text for one part; empty when the part only updates state (usage, finish). */

  protected override providerFields(fields: Record<string, unknown>): void {
    this.fieldsOfProvider = { ...this.fieldsOfProvider, ...fields };
  }

  /** Closes the response once the upstream parts are exhausted; empty after an error. */
  end(): string {
    if (this.ended || this.native) return '';
    this.ended = true;
    const { status, incomplete_details } = statusFromFinish(this.finishReason);
    const opening = this.opening() + this.closeItem() + this.emptyMessageUnlessAnswered();
    const response = withProviderFields(
      responseObject(this.shell, { status, incomplete_details, output: this.output, usage: responsesUsageFromUsage(this.usage) }),
      this.fieldsOfProvider,
    );
    const type = status === 'completed' ? 'response.completed' : 'response.incomplete';
    const sequence = this.sequence;
    this.completing = whenNotStored(
      this.onComplete?.(response),
      () => opening + encodeSseEvent(type, JSON.stringify({ type, sequence_number: sequence, response: { ...response, store: false } })),
    );
    return opening + this.event(type, { response });
  }

  /**
   * The final event waits for the stored response's row: a client that has it finds the response
   * everywhere. Resolves to the final event to send instead when the row could not be written.
   */
  settle(): Promise<string | undefined> | undefined {
    const completing = this.completing;
    if (completing !== undefined) this.completing = undefined;
    return completing;
  }

  private event(type: string, fields: Json): string {
    return encodeSseEvent(type, JSON.stringify({ type, sequence_number: this.sequence++, ...fields }));
  }

  protected start(_id: string, model: string): string {
    if (!this.started && model !== '') this.shell.model = model;
    return this.opening();
  }

  protected closeOpen(): string {
    return this.closeItem();
  }

  private opening(): string {
    if (this.started) return '';
    this.started = true;
    const response = responseObject(this.shell, { status: 'in_progress', output: [], usage: null });
    return this.event('response.created', { response }) + this.event('response.in_progress', { response });
  }

  private openItem(kind: OpenItem['kind'], id: string, item: Json, toolIndex = -1, callId = '', name = ''): string {
    const prefix = this.opening() + this.closeItem();
    const outputIndex = this.output.length;
    this.output.push(item);
    const fields = `"item_id":${JSON.stringify(id)},"output_index":${outputIndex},${DELTA_FIELDS[kind]}"delta":`;
    const deltaMiddle = flatString(`,${fields}`);
    this.open = {
      kind,
      id,
      outputIndex,
      parts: [],
      toolIndex,
      callId,
      name,
      deltaMiddle,
      deltaPrefix: DELTA_PREFIX[kind],
      deltaMiddleBytes: utf8(deltaMiddle),
      deltaPrefixBytes: DELTA_PREFIX_BYTES[kind],
    };
    return prefix + this.event('response.output_item.added', { output_index: outputIndex, item });
  }

  private closeItem(): string {
    const open = this.open;
    if (open === undefined) return '';
    this.open = undefined;
    const at = { item_id: open.id, output_index: open.outputIndex };
    const whole = open.parts.join('');
    let text = '';
    let item: Json;
    // Closed by the finish of an incomplete response (max_output_tokens, a content filter): the model
    // stopped inside this item, which OpenAI marks incomplete (markCutItem, for the answer not streamed).
    const status = statusFromFinish(this.finishReason).status;
    if (open.kind === 'message') {
      const part = { type: 'output_text', text: whole, annotations: [], logprobs: [] };
      text += this.event('response.output_text.done', { ...at, content_index: 0, text: whole, logprobs: [] });
      text += this.event('response.content_part.done', { ...at, content_index: 0, part });
      item = messageItem(open.id, whole, status);
    } else if (open.kind === 'reasoning') {
      text += this.event('response.reasoning_summary_text.done', { ...at, summary_index: 0, text: whole });
      text += this.event('response.reasoning_summary_part.done', { ...at, summary_index: 0, part: { type: 'summary_text', text: whole } });
      item = reasoningItem(open.id, whole);
    } else if (open.kind === 'custom_tool_call') {
      const input = customInputFromArguments(whole);
      if (input !== '') text += this.delta(open, input);
      text += this.event('response.custom_tool_call_input.done', { ...at, input });
      item = customToolCallItem(open.id, open.callId, open.name, input, status);
    } else {
      text += this.event('response.function_call_arguments.done', { ...at, name: open.name, arguments: whole });
      item = functionCallItem(open.id, open.callId, open.name, whole, status);
    }
    this.output[open.outputIndex] = item;
    return text + this.event('response.output_item.done', { output_index: open.outputIndex, item });
  }

  /** A delta event built by concatenation from the item's cached pieces: the hot path of every stream. */
  private delta(open: OpenItem, delta: string): string {
    const sequence = sequenceText(this.sequence++);
    // Most deltas need no escape: quoting them beats JSON.stringify's scan and copy, in one template (one rope to encode).
    if (NEEDS_ESCAPE.test(delta)) return `${open.deltaPrefix}${sequence}${open.deltaMiddle}${JSON.stringify(delta)}}\n\n`;
    return `${open.deltaPrefix}${sequence}${open.deltaMiddle}"${delta}"}\n\n`;
  }

  /**
   * The bytes `encode` would give as text (streamAnswer sends these). A delta into the item already
   * open, every delta of a stream but its item's first, is written straight to bytes (frameBytes);
   * anything else is its text encoded.
   */
  encodeBytes(part: StreamPart): Uint8Array {
    const open = this.open;
    if (open !== undefined && !this.ended) {
      const delta = this.openItemDelta(open, part);
      if (delta !== undefined) {
        open.parts.push(delta);
        return frameBytes(open.deltaPrefixBytes, this.sequence++, open.deltaMiddleBytes, delta, DELTA_END_BYTES);
      }
    }
    const text = this.encode(part);
    return text === '' ? NO_BYTES : textEncoder.encode(text);
  }

  /** The delta a part adds to the open item when `encode` would write exactly one delta event for it, else undefined. */
  private openItemDelta(open: OpenItem, part: StreamPart): string | undefined {
    if (part.type === 'text-delta') return part.index === 0 && part.text !== '' && open.kind === 'message' ? part.text : undefined;
    if (part.type === 'reasoning-delta') return part.index === 0 && part.text !== '' && open.kind === 'reasoning' ? part.text : undefined;
    if (part.type === 'tool-call-delta')
      return part.index === 0 && part.argumentsDelta !== '' && open.kind === 'function_call' && open.toolIndex === part.toolIndex
        ? part.argumentsDelta
        : undefined;
    return undefined;
  }

  protected text(delta: string): string {
    if (delta === '') return '';
    const output = this.open?.kind === 'message' ? '' : this.openMessage();
    const open = this.open as OpenItem;
    open.parts.push(delta);
    return output === '' ? this.delta(open, delta) : output + this.delta(open, delta);
  }

  private openMessage(): string {
    const id = this.ids.next('msg');
    const output = this.openItem('message', id, { id, type: 'message', status: 'in_progress', role: 'assistant', content: [] });
    return (
      output +
      this.event('response.content_part.added', {
        item_id: id,
        output_index: this.output.length - 1,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      })
    );
  }

  /**
   * A model's answer with neither text nor a call (a prompt the provider blocked, an empty generation)
   * still has its message, empty, as the same answer not streamed does (outputItemsFromMessage): the
   * response's output is the same either way. A response no model answered (a WebSocket warm-up,
   * `generate: false`) has no finish and keeps its empty output.
   */
  private emptyMessageUnlessAnswered(): string {
    if (this.finishReason === undefined) return '';
    const answered = this.output.some((item) => item.type === 'message' || item.type === 'function_call' || item.type === 'custom_tool_call');
    return answered ? '' : this.openMessage() + this.closeItem();
  }

  protected reasoning(delta: string): string {
    // A bare signature (Anthropic, Gemini) carries no text a Responses client could show.
    if (delta === '') return '';
    let output = '';
    if (this.open?.kind !== 'reasoning') {
      const id = this.ids.next('rs');
      output = this.openItem('reasoning', id, { id, type: 'reasoning', summary: [] });
      output += this.event('response.reasoning_summary_part.added', {
        item_id: id,
        output_index: this.output.length - 1,
        summary_index: 0,
        part: { type: 'summary_text', text: '' },
      });
    }
    const open = this.open as OpenItem;
    open.parts.push(delta);
    return output + this.delta(open, delta);
  }

  protected toolStart(toolIndex: number, callId: string, name: string): string {
    if (this.customTools.has(name)) {
      const id = this.ids.next('ctc');
      return this.openItem('custom_tool_call', id, customToolCallItem(id, callId, name, '', 'in_progress'), toolIndex, callId, name);
    }
    const id = this.ids.next('fc');
    return this.openItem('function_call', id, functionCallItem(id, callId, name, '', 'in_progress'), toolIndex, callId, name);
  }

  protected toolDelta(toolIndex: number, argumentsDelta: string): string {
    // An item cannot reopen once done, so fragments for any other call are dropped; upstreams send
    // each call's fragments together, so this does not happen in practice.
    const open = this.open;
    if (argumentsDelta === '' || open === undefined || open.toolIndex !== toolIndex) return '';
    if (open.kind === 'custom_tool_call') {
      open.parts.push(argumentsDelta);
      return '';
    }
    if (open.kind !== 'function_call') return '';
    open.parts.push(argumentsDelta);
    return this.delta(open, argumentsDelta);
  }

  /**
   * A failure after the first event. The item it cut short is never done (as in OpenAI's own streams)
   * and is not in the failed response's output; `usage` is null, as OpenAI sends it (the usage row
   * books the tokens the provider bills, estimated when it reported none); `store` is false, as
   * nothing is kept.
   */
  protected error(descriptor: ErrorDescriptor): string {
    if (this.native) return this.nativeError(descriptor);
    const prefix = this.opening();
    const cut = this.open;
    if (cut !== undefined) {
      this.open = undefined;
      this.output.length = cut.outputIndex;
    }
    this.ended = true;
    const error = { code: descriptor.code, message: descriptor.message };
    const response = { ...responseObject(this.shell, { status: 'failed', output: this.output, usage: null, error }), store: false };
    return (
      prefix +
      this.event('response.failed', { response }) +
      this.event('error', { code: descriptor.code, message: descriptor.message, param: descriptor.param ?? null })
    );
  }

  /** An OpenAI-compatible upstream's chunk, read through the same paths as native parts. */
}
