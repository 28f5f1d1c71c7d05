import { PERPLEXITY_MODEL_CLASSES } from './model-classes.ts';
import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type CallContext, type ProviderAdapter, type ProviderCredential } from '../../core/spec/plugin.ts';
import { configuredBaseUrl, postUpstream, readJsonBody, resolveBaseUrl, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { openAIHeaders } from '../openai-compatible/request.ts';
import { classifyPerplexityError } from './errors.ts';
import { listPerplexityModels } from './models.ts';
import { buildPerplexityChatBody } from './request.ts';
import { parsePerplexityChatResponse } from './response.ts';
import { PERPLEXITY_DEFAULT_SEARCH_CONTEXT_SIZE, requestedSearchContextSize } from './usage.ts';
import { perplexityStreamParts } from './stream.ts';

export const PERPLEXITY_DEFAULT_BASE_URL = 'https://api.perplexity.ai';
export const PERPLEXITY_CATALOG_ALIASES = { providers: ['perplexity'], modelPrefixes: ['perplexity/'] } as const;

export interface PerplexityAdapterOptions {
  /** A bare host (`https://api.perplexity.ai`); Keyway adds `/chat/completions` and `/v1/models`. */
  baseUrl: string | undefined;
  fetch: typeof fetch;
}

// Perplexity's Agent API documents X-RateLimit-* headers; Sonar may send the same family.
const REMAINING_HEADERS = ['x-ratelimit-remaining-requests', 'x-ratelimit-remaining'] as const;

/** Perplexity Sonar through its OpenAI-like `/chat/completions`, with its search fields kept. */
export function createPerplexityAdapter(options: PerplexityAdapterOptions): ProviderAdapter {
  const baseUrlFor = (credential: ProviderCredential) => resolveBaseUrl(credential, options.baseUrl, PERPLEXITY_DEFAULT_BASE_URL);

  async function send(request: ChatRequest, context: CallContext, stream: boolean): Promise<Response> {
    const body = buildPerplexityChatBody({ ...request, stream }, context.model, context.credential.settings, context.warnings);
    const response = await postUpstream(
      options.fetch,
      {
        url: `${baseUrlFor(context.credential)}/chat/completions`,
        headers: openAIHeaders(context.credential.apiKey, undefined, stream),
        body: JSON.stringify(body),
        info: { requestIdHeader: 'x-request-id', remainingHeaders: REMAINING_HEADERS },
      },
      context,
      'perplexity',
      classifyPerplexityError,
    );
    return response;
  }

  return {
    name: 'perplexity',
    defaultBaseUrl: PERPLEXITY_DEFAULT_BASE_URL,
    modelPatterns: [/^sonar/, /^r1-1776/],
    catalogAliases: PERPLEXITY_CATALOG_ALIASES,
    modelClasses: PERPLEXITY_MODEL_CLASSES,
    // Every Sonar request searches, and its request fee is billed whether or not the answer is read to
    // its end: an estimated usage (a cut stream) is priced at the depth the reader would have named.
    searchContextSizeOf: (request) => (request === undefined ? undefined : requestedSearchContextSize(request)) ?? PERPLEXITY_DEFAULT_SEARCH_CONTEXT_SIZE,
    async chat(request, context) {
      const response = await send(request, context, false);
      return parsePerplexityChatResponse(await readJsonBody(response, 'perplexity', context.signal), requestedSearchContextSize(request));
    },
    async chatStream(request, context) {
      const response = await send(request, context, true);
      if (response.body === null)
        throw upstreamFailure({ provider: 'perplexity', status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return perplexityStreamParts(response.body, context.signal, requestedSearchContextSize(request));
    },
    async listModels(credential, signal) {
      return listPerplexityModels({
        fetch: options.fetch,
        baseUrl: baseUrlFor(credential),
        headers: openAIHeaders(credential.apiKey, undefined, false),
        signal,
        classify: classifyPerplexityError,
      });
    },
  };
}

const configSchema = Type.Object({ baseUrl: Type.Optional(Type.String({ format: 'uri' })) });

export const perplexityProviderPlugin = definePlugin({
  name: 'provider-perplexity',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'provider',
  environment: [{ name: 'KEYWAY_PERPLEXITY_BASE_URL', description: 'The Perplexity API address' }],
  description: 'Perplexity Sonar chat completions with citations and search results',
  configSchema,
  setup(context) {
    return {
      provider: createPerplexityAdapter({ baseUrl: configuredBaseUrl(context, 'provider-perplexity', 'KEYWAY_PERPLEXITY_BASE_URL'), fetch: context.fetch }),
    };
  },
});
