// The Anthropic Messages dialect: `POST /v1/messages` and `/v1/messages/count_tokens` as lifecycle
// operations, so Anthropic SDKs and Claude Code work unchanged against any provider.

import type { ChatOperation, Dialect, NativeCalls, ParseContext, UnaryOperation } from '../../core/spec/dialect.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { ErrorKit } from '../../core/spec/services.ts';
import { type ChatRequest, FORWARDED_TEXTS } from '../../core/spec/vocabulary.ts';
import { checkModelName } from '../../core/wire/request-validation.ts';
import { anthropicErrorBody } from './errors.ts';
import { anthropicModelsList } from './models.ts';
import { bodyTexts, forwardedTexts } from './forwarded.ts';
import { chatRequestFromMessages, type MessagesTranslation } from './request.ts';
import { messagesResponseFromResult, stopSequencesOf } from './response.ts';
import { AnthropicStreamEncoder } from './stream-encoder.ts';

export const anthropicMessagesDialect: Dialect = {
  name: 'anthropic',
  // Anthropic's own answer, from its own Messages API, goes back as it came.
  encodeResult(result, context) {
    warnIfTranslated(context);
    return result.nativeBody ?? messagesResponseFromResult(result, stopSequencesOf(context.request));
  },
  createStreamEncoder(context, model) {
    warnIfTranslated(context);
    return new AnthropicStreamEncoder({ model, requestId: context.requestId, stopSequences: stopSequencesOf(context.request) });
  },
  errorBody: (descriptor, requestId) => anthropicErrorBody(descriptor, requestId),
  modelsList: anthropicModelsList,
};

/** Where the `anthropic-beta` header travels to the Anthropic adapter. */
const BETA_FIELD = 'betas';
const NATIVE_BODY = Symbol('count_tokens body');
/** What a request for Anthropic's own API keeps beside its translation (symbols never reach a provider). */
const NATIVE_REQUEST = Symbol('messages request for the native API');

interface NativeRequest {
  /** The body as sent, less Keyway's own fields. */
  body: Record<string, unknown>;
  /**
   * The refusal for a route without Anthropic when only its API can serve the request (a server
   * tool); undefined when another provider may serve the translation (a request for citations).
   */
  refusal: Error | undefined;
  /** What the translation could not carry: it holds only when the translation serves (another provider). */
  translationWarnings: string[];
}

function nativeRequestOf(context: RequestContext): NativeRequest | undefined {
  return (context.request as unknown as Record<symbol, NativeRequest | undefined>)[NATIVE_REQUEST];
}

/**
 * Keeps the body as sent for Anthropic's own API. A request only that API can serve is served as
 * sent or refused, so the translation's warnings never hold for it; a request for citations may be
 * served by the translation (a fallback to another provider), and its warnings wait for that.
 */
function keepNativeRequest(body: unknown, translation: MessagesTranslation): void {
  const sent = { ...(body as Record<string, unknown>) };
  delete sent.provider;
  delete sent.routing;
  const translationWarnings = translation.nativeOnly === undefined ? translation.warnings : [];
  const native: NativeRequest = { body: sent, refusal: translation.nativeOnly, translationWarnings };
  (translation.request as unknown as Record<symbol, NativeRequest>)[NATIVE_REQUEST] = native;
  // Sent as written, the body carries what the translation left out (server tool blocks, citations): the content policies read it too.
  const forwarded = translation.forwarded;
  if (forwarded.length > 0) translation.request[FORWARDED_TEXTS] = () => forwardedTexts(forwarded);
}

/** The held warnings of the translation, once it is what served (Anthropic's own API was not). */
function warnIfTranslated(context: RequestContext): void {
  const held = nativeRequestOf(context)?.translationWarnings;
  if (held === undefined || held.length === 0 || context.served?.api !== undefined) return;
  context.warnings.push(...held);
}

function stringField(body: unknown, name: string): string | undefined {
  const value = (body as Record<string, unknown> | null)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** Translation depends on who serves: Anthropic keeps thinking blocks, cache_control and signatures. */
function parseMessages(body: unknown, context: ParseContext): ChatRequest {
  const providerField = stringField(body, 'provider');
  const model = stringField(body, 'model');
  // Checked before the peek, which resolves the name and looks for close matches to it: a 60,000
  // character name held the worker for seconds there, before the body's own checks refused it.
  if (model !== undefined) checkModelName(model);
  const target = context.peekProvider(model ?? '', providerField);
  const translation = chatRequestFromMessages(body, { targetProvider: target });
  if (translation.nativeOnly !== undefined || translation.citations) keepNativeRequest(body, translation);
  else context.warnings.push(...translation.warnings);
  const beta = context.headers.get('anthropic-beta');
  if (beta !== null && target === 'anthropic') translation.request[BETA_FIELD] = beta;
  if (providerField !== undefined) translation.request.provider = providerField;
  const routing = (body as { routing?: unknown }).routing;
  if (routing !== undefined && routing !== null && typeof routing === 'object') translation.request.routing = routing as ChatRequest['routing'];
  return translation.request;
}

/**
 * A request with a tool only Anthropic runs or defines goes to Anthropic's own Messages API as sent
 * (its server tool blocks and citations come back whole); a route without Anthropic is refused, 400
 * naming the tool. A request that asks for citations goes there too when Anthropic serves, so its
 * text blocks keep their `citations` (and a stream its `citations_delta` events); any other provider
 * (routed, or after a fallback) serves its translation, in text. Every other request keeps the
 * translation, Anthropic's included.
 */
const nativeCalls: NativeCalls = {
  api: 'messages',
  body(context, model) {
    const beta = context.headers.get('anthropic-beta');
    const body = { ...nativeRequestOf(context)?.body, model };
    return beta === null ? body : { ...body, [BETA_FIELD]: beta };
  },
  requiredBecause: (context) => nativeRequestOf(context)?.refusal,
  wanted: (context) => nativeRequestOf(context) !== undefined,
};

export const messagesOperation: ChatOperation = {
  kind: 'chat',
  endpoint: 'messages',
  dialect: anthropicMessagesDialect,
  parse: parseMessages,
  native: nativeCalls,
};

function countTokensBodyOf(request: ChatRequest): Record<string, unknown> {
  return (request as unknown as Record<symbol, Record<string, unknown> | undefined>)[NATIVE_BODY] ?? {};
}

/**
 * The body Anthropic counts is every text it reads, with no translated messages beside it: the content
 * policies read it through FORWARDED_TEXTS, while what weighs `messages` (token limits, budgets, the
 * prompt estimate) sees none, as counting is free.
 */
const countTokensTexts = (request: ChatRequest) => bodyTexts(countTokensBodyOf(request));

/** `count_tokens` is answered by the provider (free); other providers refuse it as unsupported. */
export function countTokensOperation(errors: ErrorKit): UnaryOperation<number> {
  return {
    kind: 'unary',
    endpoint: 'count_tokens',
    dialect: anthropicMessagesDialect,
    parse(body) {
      const model = stringField(body, 'model');
      if (model === undefined) throw errors.create('missing_field', { param: 'model' }, { param: 'model' });
      checkModelName(model);
      const { provider, routing, ...native } = body as Record<string, unknown>;
      const request: ChatRequest = { model, messages: [], provider: typeof provider === 'string' ? provider : undefined };
      // Only the model's own provider can count its tokens: an account's cost_optimized default or a
      // class override would send a Claude model's count to another provider, which cannot count it.
      const asked = routing !== null && typeof routing === 'object' ? (routing as ChatRequest['routing']) : undefined;
      request.routing = { ...asked, strategy: 'direct' };
      (request as unknown as Record<symbol, unknown>)[NATIVE_BODY] = native;
      request[FORWARDED_TEXTS] = countTokensTexts;
      return request;
    },
    invoke(adapter, call, context) {
      if (adapter.countTokens === undefined)
        throw errors.create('unsupported_feature', { detail: `Token counting is offered for Anthropic models only, not ${adapter.name}.` });
      const native = countTokensBodyOf(context.request);
      const beta = context.headers.get('anthropic-beta');
      return adapter.countTokens(beta === null ? native : { ...native, [BETA_FIELD]: beta }, call);
    },
    // Counting is free: the row records the call with no tokens.
    answer: (inputTokens) => ({ body: { input_tokens: inputTokens }, usage: undefined }),
  };
}
