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

/** The request's settings the response object echoes, kept beside the translation (symbols never reach a provider). */
const ECHO = Symbol('responses echo');

function echoFor(context: RequestContext): ResponseEcho {
  return (context.request as unknown as Record<symbol, ResponseEcho | undefined>)[ECHO] ?? echoOf({});
}

export const responsesDialect: Dialect = {
  name: 'responses',
  encodeResult: (result, context) => responsesBodyFromResult(result, echoFor(context), newResponseId()),
  createStreamEncoder: (context, model) => new ResponsesStreamEncoder({ responseId: newResponseId(), model, echo: echoFor(context) }),
  // The Responses API reports failures in OpenAI's one error shape.
  errorBody: (descriptor) => openAIErrorBody(descriptor),
};

function parseResponses(body: unknown, context: ParseContext): ChatRequest {
  const translation = chatRequestFromResponses(body);
  context.warnings.push(...translation.warnings);
  (translation.request as unknown as Record<symbol, ResponseEcho>)[ECHO] = echoOf(body as Record<string, unknown>);
  return translation.request;
}

export const responsesOperation: ChatOperation = { kind: 'chat', endpoint: 'responses', dialect: responsesDialect, parse: parseResponses };
