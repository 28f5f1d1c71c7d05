// The Anthropic Messages dialect: `POST /v1/messages` and `/v1/messages/count_tokens` as lifecycle
// operations, so Anthropic SDKs and Claude Code work unchanged against any provider.

import type { ChatOperation, Dialect, ParseContext, UnaryOperation } from '../../core/spec/dialect.ts';
import type { ErrorKit } from '../../core/spec/services.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { anthropicErrorBody } from './errors.ts';
import { chatRequestFromMessages } from './request.ts';
import { messagesResponseFromResult, stopSequencesOf } from './response.ts';
import { AnthropicStreamEncoder } from './stream-encoder.ts';

export const anthropicMessagesDialect: Dialect = {
  name: 'anthropic',
  encodeResult: (result, context) => messagesResponseFromResult(result, stopSequencesOf(context.request)),
  createStreamEncoder: (context, model) => new AnthropicStreamEncoder({ model, requestId: context.requestId, stopSequences: stopSequencesOf(context.request) }),
  errorBody: (descriptor, requestId) => anthropicErrorBody(descriptor, requestId),
};

/** Where the `anthropic-beta` header travels to the Anthropic adapter. */
const BETA_FIELD = 'betas';
const NATIVE_BODY = Symbol('count_tokens body');

function stringField(body: unknown, name: string): string | undefined {
  const value = (body as Record<string, unknown> | null)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** Translation depends on who serves: Anthropic keeps thinking blocks, cache_control and signatures. */
function parseMessages(body: unknown, context: ParseContext): ChatRequest {
  const providerField = stringField(body, 'provider');
  const target = context.peekProvider(stringField(body, 'model') ?? '', providerField);
  const translation = chatRequestFromMessages(body, { targetProvider: target });
  context.warnings.push(...translation.warnings);
  const beta = context.headers.get('anthropic-beta');
  if (beta !== null && target === 'anthropic') translation.request[BETA_FIELD] = beta;
  if (providerField !== undefined) translation.request.provider = providerField;
  const routing = (body as { routing?: unknown }).routing;
  if (routing !== undefined && routing !== null && typeof routing === 'object') translation.request.routing = routing as ChatRequest['routing'];
  return translation.request;
}

export const messagesOperation: ChatOperation = { kind: 'chat', endpoint: 'messages', dialect: anthropicMessagesDialect, parse: parseMessages };

/** `count_tokens` is answered by the provider (free); other providers refuse it as unsupported. */
export function countTokensOperation(errors: ErrorKit): UnaryOperation<number> {
  return {
    kind: 'unary',
    endpoint: 'count_tokens',
    dialect: anthropicMessagesDialect,
    parse(body) {
      const model = stringField(body, 'model');
      if (model === undefined) throw errors.create('missing_field', { param: 'model' }, { param: 'model' });
      const { provider, routing, ...native } = body as Record<string, unknown>;
      const request: ChatRequest = { model, messages: [], provider: typeof provider === 'string' ? provider : undefined };
      if (routing !== null && typeof routing === 'object') request.routing = routing as ChatRequest['routing'];
      (request as unknown as Record<symbol, unknown>)[NATIVE_BODY] = native;
      return request;
    },
    invoke(adapter, call, context) {
      if (adapter.countTokens === undefined)
        throw errors.create('unsupported_feature', { detail: `Token counting is offered for Anthropic models only, not ${adapter.name}.` });
      const native = (context.request as unknown as Record<symbol, Record<string, unknown>>)[NATIVE_BODY] ?? {};
      const beta = context.headers.get('anthropic-beta');
      return adapter.countTokens(beta === null ? native : { ...native, [BETA_FIELD]: beta }, call);
    },
    // Counting is free: the row records the call with no tokens.
    answer: (inputTokens) => ({ body: { input_tokens: inputTokens }, usage: undefined }),
  };
}
