// The OpenAI Responses dialect: `POST /v1/responses` as a chat operation, so Codex CLI, the AI SDK's
// default OpenAI model and the `openai` client's `responses.*` work against any provider, through the
// same lifecycle (auth, team policies, budgets, approvals, routing, fallbacks, usage) as chat. A
// provider that serves the Responses API itself (`native.responses` on its adapter: OpenAI) is called
// through it with the caller's body (native.ts); every other one through the chat translation.

import { KeywayError, openAIErrorBody } from '../../core/errors.ts';
import type { ChatOperation, Dialect, NativeCalls, ParseContext } from '../../core/spec/dialect.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { chatRequestFromResponses } from './request.ts';
import { echoOf, newResponseId, responsesBodyFromResult, type ResponseEcho } from './response.ts';
import { nativeBodyOf, withKeywayEcho, type KeywayEcho } from './native.ts';
import type { ResponseStore } from './store.ts';
import { ResponsesStreamEncoder } from './stream-encoder.ts';

type Json = Record<string, unknown>;

/** What the answer needs of the request, kept beside the translation (symbols never reach a provider). */
const STATE = Symbol('responses request');

interface ResponsesRequestState {
  /** The request's settings the response object echoes. */
  echo: ResponseEcho;
  customTools: ReadonlySet<string>;
  /** Set when the response is to be stored: the conversation before its output. */
  conversation: Json[] | undefined;
  /** The body for a provider's own Responses API, less the model. */
  nativeBody: Json;
  /** The refusal for a route without a provider's own Responses API, when only one can serve. */
  nativeOnly: Error | undefined;
  /** Warnings that hold only when the chat translation serves. */
  translationWarnings: string[];
  /** What a native answer says that Keyway decides. */
  keywayEcho: KeywayEcho;
}

function stateOf(context: RequestContext): ResponsesRequestState {
  return (
    (context.request as unknown as Record<symbol, ResponsesRequestState | undefined>)[STATE] ?? {
      echo: echoOf({}),
      customTools: new Set(),
      conversation: undefined,
      nativeBody: {},
      nativeOnly: undefined,
      translationWarnings: [],
      keywayEcho: { store: false, previous_response_id: null, metadata: {} },
    }
  );
}

/** Warnings about fields the translation dropped, when a translation served. */
function translationServed(context: RequestContext, state: ResponsesRequestState): void {
  if (context.served?.api === undefined && state.translationWarnings.length > 0) context.warnings.push(...state.translationWarnings);
}

const API = 'responses';

const nativeCalls: NativeCalls = {
  api: API,
  body: (context, model) => ({ ...stateOf(context).nativeBody, model }),
  requiredBecause: (context) => stateOf(context).nativeOnly,
};

/** Output items as the input items of a later turn (they are the same shapes). */
function keep(store: ResponseStore | undefined, state: ResponsesRequestState, context: RequestContext, response: Json): void {
  if (store === undefined || state.conversation === undefined) return;
  const output = Array.isArray(response.output) ? (response.output as Json[]) : [];
  store.save(String(response.id), {
    accountId: context.principal.accountId,
    teamId: context.teamId ?? context.principal.teamId,
    items: [...state.conversation, ...output],
    response,
  });
}

const NOT_STORED =
  'previous_response_id needs stored responses, which this gateway does not keep (the responses plugin runs with store off); send the whole conversation in input.';

export function createResponsesDialect(store: ResponseStore | undefined): { dialect: Dialect; operation: ChatOperation } {
  const dialect: Dialect = {
    name: 'responses',
    encodeResult(result, context) {
      const state = stateOf(context);
      translationServed(context, state);
      const body =
        result.nativeBody === undefined
          ? responsesBodyFromResult(result, state.echo, newResponseId(), state.customTools)
          : withKeywayEcho(result.nativeBody, state.keywayEcho);
      keep(store, state, context, body);
      return body;
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
    // The Responses API reports failures in OpenAI's one error shape.
    errorBody: (descriptor) => openAIErrorBody(descriptor),
  };

  function previousItems(body: Json, context: ParseContext): Json[] {
    const id = body.previous_response_id;
    if (id === undefined || id === null) return [];
    if (typeof id !== 'string' || id === '')
      throw new KeywayError('invalid_field', { param: 'previous_response_id', detail: 'expected a response id' }, { param: 'previous_response_id' });
    if (store === undefined) throw new KeywayError('unsupported_feature', { detail: NOT_STORED }, { param: 'previous_response_id' });
    const stored = store.forRequest(context.headers, id, context.principal);
    if (stored === undefined)
      throw new KeywayError(
        'invalid_request',
        { detail: `Previous response '${id.slice(0, 100)}' was not found: it was not stored (store: false), has expired, or belongs to someone else.` },
        { param: 'previous_response_id' },
      );
    return stored.items;
  }

  function parse(body: unknown, context: ParseContext): ChatRequest {
    const fields = (typeof body === 'object' && body !== null ? body : {}) as Json;
    const previous = previousItems(fields, context);
    const translation = chatRequestFromResponses(body, previous);
    context.warnings.push(...translation.warnings);
    const keepIt = store !== undefined && fields.store !== false;
    if (store === undefined && fields.store === true)
      context.warnings.push('store: this gateway keeps no responses (store is off); the answer was not stored.');
    const echo = { ...echoOf(fields), store: keepIt };
    const state: ResponsesRequestState = {
      echo,
      customTools: translation.customTools,
      conversation: keepIt ? [...previous, ...translation.inputItems] : undefined,
      nativeBody: nativeBodyOf(fields, previous, translation.inputItems),
      nativeOnly: translation.nativeOnly,
      translationWarnings: translation.translationWarnings,
      keywayEcho: { store: keepIt, previous_response_id: echo.previous_response_id, metadata: echo.metadata },
    };
    (translation.request as unknown as Record<symbol, ResponsesRequestState>)[STATE] = state;
    return translation.request;
  }

  return { dialect, operation: { kind: 'chat', endpoint: 'responses', dialect, parse, native: nativeCalls } };
}

/** The dialect without stored responses, for conformance suites and tools that need no gateway. */
const stateless = createResponsesDialect(undefined);
export const responsesDialect: Dialect = stateless.dialect;
export const responsesOperation: ChatOperation = stateless.operation;
