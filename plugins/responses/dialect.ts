// The OpenAI Responses dialect: `POST /v1/responses` as a chat operation, so Codex CLI, the AI SDK's
// default OpenAI model and the `openai` client's `responses.*` work against any provider, through the
// same lifecycle (auth, team policies, budgets, approvals, routing, fallbacks, usage) as chat.

import { openAIErrorBody } from '../../core/errors.ts';
import type { ChatOperation, Dialect, ParseContext } from '../../core/spec/dialect.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { chatRequestFromResponses } from './request.ts';
import { echoOf, newResponseId, responsesBodyFromResult, type ResponseEcho } from './response.ts';
import { ResponsesStreamEncoder } from './stream-encoder.ts';

/** What the answer needs of the request, kept beside the translation (symbols never reach a provider). */
const STATE = Symbol('responses request');

interface ResponsesRequestState {
  /** The request's settings the response object echoes. */
  echo: ResponseEcho;
  customTools: ReadonlySet<string>;
}

function stateOf(context: RequestContext): ResponsesRequestState {
  return (context.request as unknown as Record<symbol, ResponsesRequestState | undefined>)[STATE] ?? { echo: echoOf({}), customTools: new Set() };
}

export const responsesDialect: Dialect = {
  name: 'responses',
  encodeResult(result, context) {
    const { echo, customTools } = stateOf(context);
    return responsesBodyFromResult(result, echo, newResponseId(), customTools);
  },
  createStreamEncoder(context, model) {
    const { echo, customTools } = stateOf(context);
    return new ResponsesStreamEncoder({ responseId: newResponseId(), model, echo, customTools });
  },
  // The Responses API reports failures in OpenAI's one error shape.
  errorBody: (descriptor) => openAIErrorBody(descriptor),
};

function parseResponses(body: unknown, context: ParseContext): ChatRequest {
  const translation = chatRequestFromResponses(body);
  context.warnings.push(...translation.warnings);
  const state: ResponsesRequestState = { echo: echoOf(body as Record<string, unknown>), customTools: translation.customTools };
  (translation.request as unknown as Record<symbol, ResponsesRequestState>)[STATE] = state;
  return translation.request;
}

export const responsesOperation: ChatOperation = { kind: 'chat', endpoint: 'responses', dialect: responsesDialect, parse: parseResponses };
