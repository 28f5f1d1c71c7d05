import { COHERE_MODEL_CLASSES } from './model-classes.ts';
import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type CallContext, type ProviderAdapter, type ProviderCredential } from '../../core/spec/plugin.ts';
import { configuredBaseUrl, postUpstream, readJsonBody, resolveBaseUrl, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { embedWithCohere } from './embeddings.ts';
import { classifyCohereError } from './errors.ts';
import { listCohereModels } from './models.ts';
import { buildCohereChatBody, cohereHeaders } from './request.ts';
import { parseCohereChatResponse } from './response.ts';
import { cohereStreamParts } from './stream.ts';

export const COHERE_DEFAULT_BASE_URL = 'https://api.cohere.com';
export const COHERE_CATALOG_ALIASES = { providers: ['cohere', 'cohere_chat'], modelPrefixes: ['cohere/'] } as const;

export interface CohereAdapterOptions {
  /** A bare host (`https://api.cohere.com`); Keyway adds `/v2/chat`, `/v2/embed` and `/v1/models`. */
  baseUrl: string | undefined;
  fetch: typeof fetch;
}

// Cohere documents no rate-limit headers; these are read in case a proxy in front of it adds them.
const REMAINING_HEADERS = ['x-ratelimit-remaining-requests', 'x-ratelimit-remaining'] as const;

/** Cohere through its native Chat API v2 (not the OpenAI compatibility API). */
export function createCohereAdapter(options: CohereAdapterOptions): ProviderAdapter {
  const baseUrlFor = (credential: ProviderCredential) => resolveBaseUrl(credential, options.baseUrl, COHERE_DEFAULT_BASE_URL);

  async function post(path: string, body: Record<string, unknown>, context: CallContext, stream: boolean): Promise<Response> {
    const response = await postUpstream(
      options.fetch,
      {
        url: `${baseUrlFor(context.credential)}${path}`,
        headers: cohereHeaders(context.credential.apiKey, stream),
        body: JSON.stringify(body),
        info: { requestIdHeader: 'x-request-id', remainingHeaders: REMAINING_HEADERS },
      },
      context,
      'cohere',
      classifyCohereError,
    );
    return response;
  }

  const chatBody = (request: ChatRequest, context: CallContext, stream: boolean) =>
    buildCohereChatBody({ ...request, stream }, context.model, context.credential.settings, context.warnings);

  return {
    name: 'cohere',
    defaultBaseUrl: COHERE_DEFAULT_BASE_URL,
    modelPatterns: [/^command/, /^c4ai-/, /^embed-/],
    catalogAliases: COHERE_CATALOG_ALIASES,
    modelClasses: COHERE_MODEL_CLASSES,
    async chat(request, context) {
      const response = await post('/v2/chat', chatBody(request, context, false), context, false);
      return parseCohereChatResponse(await readJsonBody(response, 'cohere', context.signal), context.model);
    },
    async chatStream(request, context) {
      const response = await post('/v2/chat', chatBody(request, context, true), context, true);
      if (response.body === null)
        throw upstreamFailure({ provider: 'cohere', status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return cohereStreamParts(response.body, context.model, context.signal);
    },
    async listModels(credential, signal) {
      return listCohereModels({
        fetch: options.fetch,
        baseUrl: baseUrlFor(credential),
        headers: cohereHeaders(credential.apiKey, false),
        signal,
        classify: classifyCohereError,
      });
    },
    async embeddings(request, context) {
      return embedWithCohere(request, context.model, async (body) => readJsonBody(await post('/v2/embed', body, context, false), 'cohere', context.signal));
    },
  };
}

const configSchema = Type.Object({ baseUrl: Type.Optional(Type.String({ format: 'uri' })) });

export const cohereProviderPlugin = definePlugin({
  name: 'provider-cohere',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'provider',
  environment: [{ name: 'KEYWAY_COHERE_BASE_URL', description: 'The Cohere API address' }],
  description: 'Cohere Chat API v2, embeddings (v2/embed) and models',
  configSchema,
  setup(context) {
    return { provider: createCohereAdapter({ baseUrl: configuredBaseUrl(context, 'provider-cohere', 'KEYWAY_COHERE_BASE_URL'), fetch: context.fetch }) };
  },
});
