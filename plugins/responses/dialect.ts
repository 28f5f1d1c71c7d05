// The OpenAI Responses dialect: `POST /v1/responses` as a chat operation, so Codex CLI, the AI SDK's
// default OpenAI model and the `openai` client's `responses.*` work against any provider, through the
// same lifecycle (auth, team policies, budgets, approvals, routing, fallbacks, usage) as chat. A
// provider that serves the Responses API itself (`native.responses` on its adapter: OpenAI) is called
// through it with the caller's body (native.ts); every other one through the chat translation.

import { KeywayError } from '../../core/errors.ts';
import type { ChatOperation, Dialect, NativeCalls, ParseContext } from '../../core/spec/dialect.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import { type ChatRequest, FORWARDED_TEXTS, type ForwardedText } from '../../core/spec/vocabulary.ts';
import { responsesErrorBody } from './errors.ts';
import { chatRequestFromResponses, type ItemReferences } from './request.ts';
import { echoOf, ItemIds, newResponseId, responseIdOfItem, responsesBodyFromResult, type ResponseEcho } from './response.ts';
import { forwardedItemTexts } from './forwarded.ts';
import { nativeBodyOf, withKeywayEcho, withKeywayItemIds, type KeywayEcho } from './native.ts';
import type { ResponseStore } from './store.ts';
import { ResponsesStreamEncoder } from './stream-encoder.ts';

type Json = Record<string, unknown>;

/** What the answer needs of the request, kept beside the translation (symbols never reach a provider). */
const STATE = Symbol('responses request');

interface ResponsesRequestState {
  /** The request's settings the response object echoes (`echo.store`: whether it is stored). */
  echo: ResponseEcho;
  customTools: ReadonlySet<string>;
  /** Set when the response is to be stored or remembered by its socket: the conversation continued, and this request's input. */
  conversation: { previous: Json[]; input: Json[] } | undefined;
  /** The socket a WebSocket turn came on (plugins/responses/websocket.ts). */
  memory: ConnectionMemory | undefined;
  /** The body for a provider's own Responses API, less the model. */
  nativeBody: Json;
  /** The items that body replays: the conversation continued, and this request's input (references resolved). */
  previous: readonly Json[];
  inputItems: readonly Json[];
  /** The refusal for a route without a provider's own Responses API, when only one can serve. */
  nativeOnly: Error | undefined;
  /** Warnings that hold only when the chat translation serves. */
  translationWarnings: string[];
  /** The stored response's write the JSON answer waits for (Dialect.settle); true once written. */
  written: Promise<boolean> | undefined;
  /** What a native answer says that Keyway decides. */
  keywayEcho: KeywayEcho;
}

/**
 * What one WebSocket keeps in memory, whatever `store` says: its most recent response and the
 * conversation through it, so the next turn continues with `previous_response_id` (as OpenAI's
 * WebSocket mode does for `store: false`, which Codex sends).
 */
export interface ConnectionMemory {
  last: { id: string; items: Json[] } | undefined;
}

/** Who continues a conversation: the request's headers (where a socket's memory is attached) and caller. */
export type ContinuationContext = Pick<ParseContext, 'headers' | 'principal'>;

function stateOf(context: RequestContext): ResponsesRequestState {
  return (
    (context.request as unknown as Record<symbol, ResponsesRequestState | undefined>)[STATE] ?? {
      echo: echoOf({}),
      customTools: new Set(),
      conversation: undefined,
      memory: undefined,
      nativeBody: {},
      previous: [],
      inputItems: [],
      nativeOnly: undefined,
      translationWarnings: [],
      written: undefined,
      keywayEcho: { store: false, previous_response_id: null, metadata: {} },
    }
  );
}

const ID_PREFIXES: Record<string, string> = {
  message: 'msg',
  function_call: 'fc',
  function_call_output: 'fco',
  custom_tool_call: 'ctc',
  custom_tool_call_output: 'ctco',
  reasoning: 'rs',
};

/** Input items keep the ids they came with; the others get one of this response's (ItemIds), as OpenAI gives every stored item an id. */
function withIds(items: readonly Json[], ids: ItemIds): Json[] {
  return items.map((item) =>
    typeof item.id === 'string' && item.id !== '' ? item : { ...item, id: ids.next(ID_PREFIXES[String(item.type ?? 'message')] ?? 'item') },
  );
}

/** Warnings about fields the translation dropped, when a translation served. */
function translationServed(context: RequestContext, state: ResponsesRequestState): void {
  if (context.served?.api === undefined && state.translationWarnings.length > 0) context.warnings.push(...state.translationWarnings);
}

const API = 'responses';

/**
 * What the native body sends beside the translation (hosted tools' items, reasoning content), read only
 * when a policy asks: read whoever ends up serving, as any candidate with its own Responses API may.
 */
function forwardedTexts(request: ChatRequest): readonly ForwardedText[] {
  const state = (request as unknown as Record<symbol, ResponsesRequestState | undefined>)[STATE];
  return state === undefined ? [] : forwardedItemTexts(state.previous, state.inputItems);
}

const nativeCalls: NativeCalls = {
  api: API,
  body: (context, model) => ({ ...stateOf(context).nativeBody, model }),
  requiredBecause: (context) => stateOf(context).nativeOnly,
};

/**
 * Output items as the input items of a later turn (they are the same shapes). The stored response's
 * write is returned (true once written): the answer, or the stream's final event, waits for it.
 */
function keep(store: ResponseStore | undefined, state: ResponsesRequestState, context: RequestContext, response: Json): Promise<boolean> | undefined {
  if (state.conversation === undefined) return undefined;
  const id = String(response.id);
  const output = Array.isArray(response.output) ? (response.output as Json[]) : [];
  const items = [...state.conversation.previous, ...withIds(state.conversation.input, new ItemIds(id, 'i')), ...output];
  if (state.memory !== undefined) state.memory.last = { id, items };
  if (store === undefined || !state.echo.store) return undefined;
  return store.save(
    id,
    { accountId: context.principal.accountId, teamId: context.teamId ?? context.principal.teamId, items, response },
    context.served?.redactKey,
  );
}

/**
 * A stored response whose write failed is answered, and says `store: false` (QA18: it said `true`, and
 * a later previous_response_id or GET failed). The answer is kept rather than refused: the provider
 * was called and billed, a retry would be billed again, and a stream's text is out before the write;
 * `store: false` is what OpenAI's object says of a response it does not keep, so a client that reads it
 * sends the whole conversation next time, as it does after `store: false`.
 */
const NOT_WRITTEN =
  'store: the response could not be stored (the database write failed), so it is answered with store: false; previous_response_id and GET will not find it: send the whole conversation in input.';

const NOT_STORED =
  'previous_response_id needs stored responses, which this gateway does not keep (the responses plugin runs with store off); send the whole conversation in input.';
const REFERENCES_NOT_STORED =
  ': item_reference needs stored responses, which this gateway does not keep (the responses plugin runs with store off); send the item itself (with the AI SDK: providerOptions.openai.store = false).';
const REFERENCE_MISSING =
  ': it is in no stored response of yours (never stored, store: false, expired, or deleted); send the item itself (with the AI SDK: providerOptions.openai.store = false).';

export interface ResponsesDialectParts {
  dialect: Dialect;
  operation: ChatOperation;
  /** Gives a WebSocket turn's request (by its headers) the socket's memory: read and written by the dialect. */
  attachMemory(headers: Headers, memory: ConnectionMemory): void;
  /** The conversation `previous_response_id` continues (the socket's memory first, then the store); throws the spec's 400s. */
  previousItems(body: Json, context: ContinuationContext): Json[];
}

export function createResponsesDialect(store: ResponseStore | undefined): ResponsesDialectParts {
  const memories = new WeakMap<Headers, ConnectionMemory>();
  const dialect: Dialect = {
    name: 'responses',
    encodeResult(result, context) {
      const state = stateOf(context);
      translationServed(context, state);
      const body =
        result.nativeBody === undefined
          ? responsesBodyFromResult(result, state.echo, newResponseId(), state.customTools)
          : withKeywayEcho(withKeywayItemIds(result.nativeBody), state.keywayEcho);
      // The body is serialised, and the headers made, once the write settles: a failed one changes both.
      state.written = keep(store, state, context, body)?.then((stored) => {
        if (!stored) {
          body.store = false;
          context.warnings.push(NOT_WRITTEN);
        }
        return stored;
      });
      return body;
    },
    settle(context) {
      const state = stateOf(context);
      const written = state.written;
      state.written = undefined;
      return written?.then(() => undefined);
    },
    createStreamEncoder(context, model) {
      const state = stateOf(context);
      translationServed(context, state);
      const onComplete = state.conversation === undefined ? undefined : (response: Json) => keep(store, state, context, response);
      return new ResponsesStreamEncoder({
        responseId: newResponseId(),
        model,
        echo: state.echo,
        keywayEcho: state.keywayEcho,
        customTools: state.customTools,
        onComplete,
      });
    },
    // The Responses API reports failures in OpenAI's one error shape, naming the Responses fields.
    errorBody: (descriptor) => responsesErrorBody(descriptor),
  };

  function previousItems(body: Json, context: ContinuationContext): Json[] {
    const id = body.previous_response_id;
    if (id === undefined || id === null) return [];
    if (typeof id !== 'string' || id === '')
      throw new KeywayError('invalid_field', { param: 'previous_response_id', detail: 'expected a response id' }, { param: 'previous_response_id' });
    const remembered = memories.get(context.headers)?.last;
    if (remembered !== undefined && remembered.id === id) return remembered.items;
    if (store === undefined) throw new KeywayError('unsupported_feature', { detail: NOT_STORED }, { param: 'previous_response_id' });
    const stored = store.forRequest(context.headers, id, context.principal);
    if (stored === undefined)
      throw new KeywayError(
        'previous_response_not_found',
        { detail: `Previous response '${id.slice(0, 100)}' was not found: it was not stored (store: false), has expired, or belongs to someone else.` },
        { param: 'previous_response_id' },
      );
    return stored.items;
  }

  /** Items of the caller's stored responses, found by the response id their ids carry (ItemIds). */
  function references(context: ParseContext): ItemReferences {
    if (store === undefined) return { find: () => undefined, whyMissing: REFERENCES_NOT_STORED };
    return {
      find(id) {
        const responseId = responseIdOfItem(id);
        const stored = responseId === undefined ? undefined : store.forRequest(context.headers, responseId, context.principal);
        return stored?.items.find((item) => item.id === id && item.type !== 'item_reference');
      },
      whyMissing: REFERENCE_MISSING,
    };
  }

  function parse(body: unknown, context: ParseContext): ChatRequest {
    const fields = (typeof body === 'object' && body !== null ? body : {}) as Json;
    const previous = previousItems(fields, context);
    const translation = chatRequestFromResponses(body, previous, references(context));
    context.warnings.push(...translation.warnings);
    const keepIt = store !== undefined && fields.store !== false;
    if (store === undefined && fields.store === true)
      context.warnings.push('store: this gateway keeps no responses (store is off); the answer was not stored.');
    const echo = { ...echoOf(fields), store: keepIt };
    const memory = memories.get(context.headers);
    const state: ResponsesRequestState = {
      echo,
      customTools: translation.customTools,
      conversation: keepIt || memory !== undefined ? { previous, input: translation.inputItems } : undefined,
      memory,
      nativeBody: nativeBodyOf(fields, previous, translation.inputItems),
      previous,
      inputItems: translation.inputItems,
      nativeOnly: translation.nativeOnly,
      translationWarnings: translation.translationWarnings,
      written: undefined,
      keywayEcho: { store: keepIt, previous_response_id: echo.previous_response_id, metadata: echo.metadata },
    };
    (translation.request as unknown as Record<symbol, ResponsesRequestState>)[STATE] = state;
    translation.request[FORWARDED_TEXTS] = forwardedTexts;
    return translation.request;
  }

  return {
    dialect,
    operation: { kind: 'chat', endpoint: 'responses', dialect, parse, native: nativeCalls },
    attachMemory: (headers, memory) => memories.set(headers, memory),
    previousItems,
  };
}

/** The dialect without stored responses, for conformance suites and tools that need no gateway. */
const stateless = createResponsesDialect(undefined);
export const responsesDialect: Dialect = stateless.dialect;
export const responsesOperation: ChatOperation = stateless.operation;
