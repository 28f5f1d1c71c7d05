// The OpenAI dialect: Keyway's own inbound API (Chat Completions and embeddings), written in the
// shape every OpenAI client reads. Other dialects are plugins (plugins/anthropic-messages).

import { invalidField, KeywayError, openAIErrorBody } from '../errors.ts';
import type { ChatOperation, Dialect, UnaryOperation } from '../spec/dialect.ts';
import type { EmbeddingsRequest, EmbeddingsResult } from '../spec/provider.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';
import { encodeChatCompletion, OpenAIStreamEncoder } from './openai-encoder.ts';
import { checkModelName, validateChatRequest } from './request-validation.ts';

export const openAIDialect: Dialect = {
  name: 'openai',
  encodeResult: (result) => encodeChatCompletion(result),
  createStreamEncoder: (context, model) => new OpenAIStreamEncoder(context.request.stream_options?.include_usage === true, context.requestId, model),
  errorBody: (descriptor) => openAIErrorBody(descriptor),
};

/** `POST /v1/chat/completions`. */
export const chatCompletionsOperation: ChatOperation = {
  kind: 'chat',
  endpoint: 'chat',
  dialect: openAIDialect,
  parse: (body) => validateChatRequest(body),
};

type EmbeddingsBody = EmbeddingsRequest & Pick<ChatRequest, 'provider' | 'routing'>;

const UPSTREAM_EMBEDDINGS = Symbol('embeddings body');

/**
 * A provider key's `default_model` is the chat model a chat, messages or responses request gets when
 * it names only the provider; an embedding model is never it, so embeddings always name theirs.
 */
function missingEmbeddingsModel(provider: unknown): KeywayError {
  if (typeof provider !== 'string') return new KeywayError('missing_field', { param: 'model' }, { param: 'model' });
  const message =
    "Missing required field 'model'. Embeddings always name their model: a provider key's default_model is the chat model, used only by chat, messages and responses requests.";
  return new KeywayError('missing_field', { param: 'model' }, { param: 'model', message });
}

function validateEmbeddings(body: unknown): EmbeddingsBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new KeywayError('invalid_request', { detail: 'The request body must be a JSON object.' });
  const request = body as Record<string, unknown>;
  if (typeof request.model !== 'string' || request.model.length === 0) throw missingEmbeddingsModel(request.provider);
  checkModelName(request.model);
  const input = request.input;
  // A token array holds numbers only: one holding strings would be text no content policy reads (the
  // scan reads `input` strings), sent to an OpenAI-compatible provider as it came.
  const valid =
    typeof input === 'string' ||
    (Array.isArray(input) &&
      input.length > 0 &&
      (input.every((item) => typeof item === 'string') ||
        input.every((item) => typeof item === 'number') ||
        input.every((item) => Array.isArray(item) && item.every((token) => typeof token === 'number'))));
  if (!valid) throw invalidField('input', 'expected a string, an array of strings, or token arrays');
  // OpenAI refuses an empty string with 400: refused here whoever serves the model, so a request means the same everywhere.
  if (input === '' || (Array.isArray(input) && input.some((item) => item === ''))) throw invalidField('input', 'must not be an empty string, nor hold one');
  return request as unknown as EmbeddingsBody;
}

/** `POST /v1/embeddings`: routed like chat, answered in OpenAI's list shape. */
export const embeddingsOperation: UnaryOperation<EmbeddingsResult> = {
  kind: 'unary',
  endpoint: 'embeddings',
  dialect: openAIDialect,
  parse(body) {
    const embeddings = validateEmbeddings(body);
    const { provider: _provider, routing: _routing, ...upstream } = embeddings;
    // The route stage reads model, provider and routing; the provider gets the body without Keyway's fields.
    return { ...embeddings, messages: [], [UPSTREAM_EMBEDDINGS]: upstream } as ChatRequest;
  },
  invoke(adapter, call, context) {
    if (adapter.embeddings === undefined) throw new KeywayError('unsupported_feature', { detail: `${adapter.name} does not offer embeddings through Keyway.` });
    return adapter.embeddings((context.request as unknown as Record<symbol, EmbeddingsRequest>)[UPSTREAM_EMBEDDINGS] as EmbeddingsRequest, call);
  },
  answer: (result) => ({
    body: {
      object: 'list',
      data: result.data.map((item) => ({ object: 'embedding', index: item.index, embedding: item.embedding })),
      model: result.model,
      usage: { prompt_tokens: result.usage.inputTokens, total_tokens: result.usage.totalTokens },
    },
    usage: result.usage,
    model: result.model,
  }),
};
