import { GOOGLE_KEY_SETTINGS_SCHEMA } from './safety.ts';
import { GOOGLE_MODEL_CLASSES } from './model-classes.ts';
import { Type } from '@sinclair/typebox';
import {
  definePlugin,
  PLUGIN_API_VERSION,
  type CallContext,
  type EmbeddingsRequest,
  type EmbeddingsResult,
  type ProviderAdapter,
  type ProviderCredential,
} from '../../core/spec/plugin.ts';
import { configuredBaseUrl, getUpstreamJson, postUpstream, readJsonBody, resolveBaseUrl, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { classifyGeminiError, PROVIDER_NAME } from './errors.ts';
import { embedWithGemini } from './embeddings.ts';
import { buildGeminiRequest, geminiHeaders, geminiModelPath } from './request.ts';
import { parseGeminiChatResponse, type GeminiResponse } from './response.ts';
import { geminiStreamParts } from './stream.ts';

export const GOOGLE_DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';
export const GOOGLE_CATALOG_ALIASES = { providers: ['gemini'], modelPrefixes: ['gemini/'] } as const;
const API_VERSION_PATH = '/v1beta';
const ENVIRONMENT_VARIABLE = 'KEYWAY_GOOGLE_BASE_URL';
/** Gemini's maximum page size, so a models listing usually takes one request. */
const MODELS_PAGE_SIZE = 1000;
/** A guard against a server that keeps answering a nextPageToken. */
const MODELS_MAX_PAGES = 20;

export interface GoogleAdapterOptions {
  /** A bare host (`https://generativelanguage.googleapis.com`); the adapter adds `/v1beta/…`. */
  baseUrl?: string | undefined;
  fetch: typeof fetch;
}

/**
 * Gemini through its native Generative Language API. The key travels only in `x-goog-api-key`,
 * never in a URL, so it cannot leak into access logs, proxies or error messages that echo URLs.
 */
export function createGoogleAdapter(options: GoogleAdapterOptions): ProviderAdapter {
  const apiBase = (credential: ProviderCredential) => `${resolveBaseUrl(credential, options.baseUrl, GOOGLE_DEFAULT_BASE_URL)}${API_VERSION_PATH}`;

  async function post(url: string, body: Record<string, unknown>, context: CallContext, stream: boolean): Promise<Response> {
    const response = await postUpstream(
      options.fetch,
      {
        url,
        headers: geminiHeaders(context.credential.apiKey, stream),
        body: JSON.stringify(body),
        info: { requestIdHeader: 'x-request-id', remainingHeaders: [] },
      },
      context,
      PROVIDER_NAME,
      classifyGeminiError,
    );
    return response;
  }

  function chatUrl(context: CallContext, stream: boolean): string {
    const method = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
    return `${apiBase(context.credential)}/${geminiModelPath(context.model)}:${method}`;
  }

  function chatBody(request: ChatRequest, context: CallContext): Record<string, unknown> {
    return buildGeminiRequest(request, context.model, context.credential.settings, context.warnings);
  }

  return {
    name: PROVIDER_NAME,
    defaultBaseUrl: GOOGLE_DEFAULT_BASE_URL,
    modelPatterns: [/^gemini-/, /^gemma-/, /^learnlm-/, /^embedding-\d/, /^text-embedding-00\d$/],
    // Google's SDKs and docs write `models/gemini-2.5-flash`; the name without it goes upstream.
    modelNameForms: { prefixes: ['models/'] },
    catalogAliases: GOOGLE_CATALOG_ALIASES,
    keySettingsSchema: GOOGLE_KEY_SETTINGS_SCHEMA,
    modelClasses: GOOGLE_MODEL_CLASSES,
    async chat(request, context) {
      const response = await post(chatUrl(context, false), chatBody(request, context), context, false);
      const body = (await readJsonBody(response, PROVIDER_NAME, context.signal)) as GeminiResponse;
      if (typeof body.responseId === 'string') context.upstream.requestId ??= body.responseId;
      return parseGeminiChatResponse(body, context.model);
    },
    async chatStream(request, context) {
      const response = await post(chatUrl(context, true), chatBody(request, context), context, true);
      if (response.body === null)
        throw upstreamFailure({ provider: PROVIDER_NAME, status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return geminiStreamParts(response.body, context.signal, context.model);
    },
    listModels: (credential, signal) => listModels(options.fetch, apiBase(credential), credential.apiKey, signal),
    async embeddings(request: EmbeddingsRequest, context: CallContext): Promise<EmbeddingsResult> {
      const url = `${apiBase(context.credential)}/${geminiModelPath(context.model)}:batchEmbedContents`;
      return embedWithGemini(request, context.model, async (body) => readJsonBody(await post(url, body, context, false), PROVIDER_NAME, context.signal));
    },
  };
}

/** Follows `nextPageToken` and strips the `models/` prefix to give OpenAI-style ids. */
async function listModels(fetchImplementation: typeof fetch, apiBase: string, apiKey: string, signal: AbortSignal): Promise<string[]> {
  const names: string[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < MODELS_MAX_PAGES; page++) {
    const query = new URLSearchParams({ pageSize: String(MODELS_PAGE_SIZE) });
    if (pageToken !== undefined) query.set('pageToken', pageToken);
    const body = (await getUpstreamJson(
      fetchImplementation,
      `${apiBase}/models?${query.toString()}`,
      geminiHeaders(apiKey, false),
      signal,
      PROVIDER_NAME,
      classifyGeminiError,
    )) as {
      models?: Array<{ name?: unknown }>;
      nextPageToken?: unknown;
    };
    for (const model of body.models ?? []) if (typeof model.name === 'string') names.push(model.name.replace(/^models\//, ''));
    if (typeof body.nextPageToken !== 'string' || body.nextPageToken === '') break;
    pageToken = body.nextPageToken;
  }
  return names;
}

const configSchema = Type.Object({ baseUrl: Type.Optional(Type.String({ format: 'uri' })) });

export const googleProviderPlugin = definePlugin({
  name: 'provider-google',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'provider',
  environment: [{ name: 'KEYWAY_GOOGLE_BASE_URL', description: 'The Gemini API address' }],
  description: 'Google Gemini through the native Generative Language API: chat, streaming, tools, embeddings, models',
  configSchema,
  setup(context) {
    return { provider: createGoogleAdapter({ baseUrl: configuredBaseUrl(context, 'provider-google', ENVIRONMENT_VARIABLE), fetch: context.fetch }) };
  },
});
