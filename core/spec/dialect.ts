// The dialect contract: an inbound API (OpenAI Chat Completions, Anthropic Messages…) — how its
// requests become Keyway's and how results, streams and errors are written back in its shape.

import type { Endpoint, RequestContext } from './lifecycle.ts';
import type { Principal } from './principal.ts';
import type { CallContext, ProviderAdapter } from './provider.ts';
import type { ChatRequest, ChatResult, ErrorDescriptor, StreamPart, Usage } from './vocabulary.ts';

export interface StreamEncoder {
  /** SSE text for a part ('' when the part shows nothing to this client). */
  encode(part: StreamPart): string;
  /**
   * The same SSE text as UTF-8, for an encoder that can write some frames straight to bytes, cheaper
   * than building the text and encoding it; used instead of `encode` when present (empty: nothing).
   */
  encodeBytes?(part: StreamPart): Uint8Array;
  /** SSE text that closes a stream that ended well. */
  end(): string;
  /**
   * What the frame just encoded (by `encode`, `encodeBytes` or `end`) must wait for before it is sent,
   * or undefined: asked after every frame, so it must be cheap when nothing waits. The Responses
   * dialect's final event waits for its stored response's row, so a client that has the event finds
   * the response on every worker and instance. It may resolve to the SSE text to send in place of that
   * frame, when the wait changed what it says (a row that could not be written: `store: false`).
   */
  settle?(): Promise<string | undefined | void> | undefined;
}

export interface Dialect {
  name: string;
  /** The answer body: a string is sent as it is, anything else as JSON. */
  encodeResult(result: ChatResult, context: RequestContext): unknown;
  createStreamEncoder(context: RequestContext, model: string): StreamEncoder;
  /** What the answer `encodeResult` just made must wait for before it is sent, or undefined (as StreamEncoder.settle). */
  settle?(context: RequestContext): Promise<void> | undefined;
  /** The error body every failure on this dialect's routes is written in. */
  errorBody(descriptor: ErrorDescriptor, requestId: string): unknown;
  /** `GET /v1/models` and `/v1/models/{id}` in the dialect's own shape, for its clients' SDKs. */
  modelsList?: DialectModelsList;
}

/** One model of a caller's `GET /v1/models` list, as the core builds it. */
export interface ModelListEntry {
  id: string;
  /** When the provider's list says the model was published (Unix seconds); 0 when it does not say. */
  created: number;
  provider: string;
}

/**
 * A dialect's shape of the model list. The core lists what the caller may use and asks each dialect
 * whether the request is its clients' (Anthropic's SDKs send `anthropic-version` on every call);
 * OpenAI's list answers everyone else.
 */
export interface DialectModelsList {
  wants(headers: Headers): boolean;
  /** The answer for the caller's list, in the core's order, paged as the dialect pages (may throw a KeywayError). */
  page(entries: readonly ModelListEntry[], query: URLSearchParams): unknown;
  /** The answer for one model. */
  one(entry: ModelListEntry): unknown;
}

/** What `parse` may consult: it runs after authentication, before the `auth` hooks. */
export interface ParseContext {
  principal: Principal;
  headers: Headers;
  /** Things the translation could not honour; sent in `X-Keyway-Warnings`. */
  warnings: string[];
  /**
   * The provider a model name selects for this caller, or undefined: for translations that depend
   * on who serves. The answer is kept and reused by the route stage, so it costs one resolution.
   */
  peekProvider(model: string, providerField: string | undefined): string | undefined;
}

interface OperationBase {
  endpoint: Endpoint;
  dialect: Dialect;
  /** The JSON body as Keyway's request (model, provider and routing drive the route stage). */
  parse(body: unknown, context: ParseContext): ChatRequest;
}

/**
 * How a chat operation uses a provider's own API for its dialect (`ProviderAdapter.native[api]`):
 * each candidate whose adapter has it is called with `body`, any other through the chat translation.
 */
export interface NativeCalls {
  /** The name providers declare the API under (`responses`). */
  api: string;
  /** The body for one candidate; `model` is the provider's name for the model. */
  body(context: RequestContext, model: string): Record<string, unknown>;
  /**
   * The refusal for a request only that API can serve (a provider-hosted tool…), or undefined: when
   * set, candidates without the API are left out at the route stage, and none left is this error.
   */
  requiredBecause(context: RequestContext): Error | undefined;
  /**
   * Whether this request uses the API at all; absent: every request does. A dialect whose translation
   * also serves the provider that has the API (Anthropic Messages) calls it only for what the
   * translation cannot carry.
   */
  wanted?(context: RequestContext): boolean;
}

/** A chat operation: the runner calls the provider's chat or chatStream and answers in the dialect. */
export interface ChatOperation extends OperationBase {
  kind: 'chat';
  native?: NativeCalls;
}

export interface UnaryAnswer {
  body: unknown;
  usage: Usage | undefined;
  model?: string | undefined;
}

/** Any other one-shot operation (embeddings, token counting): the operation makes the call. */
export interface UnaryOperation<Value = unknown> extends OperationBase {
  kind: 'unary';
  /** One attempt against one candidate; settles when the answer is in hand. */
  invoke(adapter: ProviderAdapter, call: CallContext, context: RequestContext): Promise<Value>;
  answer(value: Value, context: RequestContext): UnaryAnswer;
}

export type InboundOperation = ChatOperation | UnaryOperation<never> | UnaryOperation<any>;
