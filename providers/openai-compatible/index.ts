// The shared base for every upstream that speaks OpenAI's Chat Completions wire format: the
// adapter, its translation, and the plugins of the well-known compatible services. OpenAI itself is
// providers/openai; Perplexity reuses the translation here for its OpenAI-shaped API.

import { Type } from '@sinclair/typebox';
import type { CatalogAliases } from '../../core/catalog/catalog.ts';
import type { Logger } from '../../core/logger.ts';
import {
  definePlugin,
  PLUGIN_API_VERSION,
  type ProviderModelClasses,
  type CallContext,
  type NativeDialectApi,
  type EmbeddingsRequest,
  type EmbeddingsResult,
  type ProviderAdapter,
  type ProviderCredential,
  type TextTokenCount,
} from '../../core/spec/plugin.ts';
import {
  getUpstreamJson,
  listedModel,
  postUpstream,
  readJsonBody,
  readJsonBodyWithText,
  configuredBaseUrl,
  resolveBaseUrl,
  upstreamFailure,
} from '../../core/wire/provider-kit.ts';
import { onOffSetting } from '../../core/spec/settings.ts';
import type { ChatRequest, OpenAIUsage, Usage } from '../../core/spec/vocabulary.ts';
import { classifyOpenAIError } from './errors.ts';
import { buildOpenAIChatBody, openAIHeaders } from './request.ts';
import { parseOpenAIChatResponse } from './response.ts';
import { openAIStreamParts } from './stream.ts';
import { usageFromOpenAI } from './usage.ts';

export interface OpenAICompatibleOptions {
  name: string;
  defaultBaseUrl: string;
  /** From `KEYWAY_<NAME>_BASE_URL` or the plugin config. */
  baseUrl: string | undefined;
  modelPatterns: RegExp[];
  modelNameForms?: ProviderAdapter['modelNameForms'];
  catalogAliases?: CatalogAliases | undefined;
  modelClasses?: ProviderModelClasses | undefined;
  fetch: typeof fetch;
  /** The provider's own APIs for inbound dialects (OpenAI's Responses API), built with the adapter's address and fetch. */
  native?: ((access: NativeAccess) => Readonly<Record<string, NativeDialectApi>>) | undefined;
  /** The provider's own tokenizers (ProviderAdapter.loadTokenizer), for a service whose models have public ones. */
  loadTokenizer?: ((model: string) => Promise<TextTokenCount | undefined>) | undefined;
}

/** What a native API of a compatible provider needs: its name, its address for a key, its fetch. */
export interface NativeAccess {
  name: string;
  baseUrlFor(credential: ProviderCredential): string;
  fetch: typeof fetch;
}

const REMAINING_HEADERS = ['x-ratelimit-remaining-requests'] as const;

/** One adapter serves OpenAI and every server that speaks its API (Ollama, vLLM, Groq, Mistral…). */
export function createOpenAICompatibleAdapter(options: OpenAICompatibleOptions): ProviderAdapter {
  const { name } = options;
  const classify = (status: number, body: string, headers: Headers) => classifyOpenAIError(name, status, body, headers);
  const baseUrlFor = (credential: ProviderCredential) => resolveBaseUrl(credential, options.baseUrl, options.defaultBaseUrl);

  async function send(request: ChatRequest, context: CallContext, stream: boolean): Promise<Response> {
    const body = buildOpenAIChatBody(request, context.model, context.credential.settings, { provider: name, warnings: context.warnings });
    const response = await postUpstream(
      options.fetch,
      {
        url: `${baseUrlFor(context.credential)}/chat/completions`,
        headers: openAIHeaders(context.credential.apiKey, context.credential.organizationId, stream),
        body: JSON.stringify(body),
        info: { requestIdHeader: 'x-request-id', remainingHeaders: REMAINING_HEADERS },
      },
      context,
      name,
      classify,
    );
    return response;
  }

  const native = options.native?.({ name, baseUrlFor, fetch: options.fetch });
  return {
    name,
    defaultBaseUrl: options.defaultBaseUrl,
    modelPatterns: options.modelPatterns,
    ...(options.modelNameForms === undefined ? {} : { modelNameForms: options.modelNameForms }),
    catalogAliases: options.catalogAliases,
    modelClasses: options.modelClasses,
    ...(native === undefined ? {} : { native }),
    ...(options.loadTokenizer === undefined ? {} : { loadTokenizer: options.loadTokenizer }),
    async chat(request, context) {
      const response = await send({ ...request, stream: false }, context, false);
      const { body, text } = await readJsonBodyWithText(response, name, context.signal);
      return { ...parseOpenAIChatResponse(name, body), openAIText: text };
    },
    async chatStream(request, context) {
      const response = await send({ ...request, stream: true }, context, true);
      if (response.body === null) throw upstreamFailure({ provider: name, status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return openAIStreamParts(name, response.body, context.signal);
    },
    async listModels(credential, signal) {
      const body = (await getUpstreamJson(
        options.fetch,
        `${baseUrlFor(credential)}/models`,
        openAIHeaders(credential.apiKey, credential.organizationId, false),
        signal,
        name,
        classify,
      )) as {
        data?: Array<{ id?: unknown; created?: unknown }>;
      };
      return (body.data ?? []).flatMap((model) => (typeof model.id === 'string' ? [listedModel(model.id, model.created)] : []));
    },
    async embeddings(request: EmbeddingsRequest, context: CallContext): Promise<EmbeddingsResult> {
      const response = await postUpstream(
        options.fetch,
        {
          url: `${baseUrlFor(context.credential)}/embeddings`,
          headers: openAIHeaders(context.credential.apiKey, context.credential.organizationId, false),
          body: JSON.stringify({ ...request, model: context.model }),
          info: { requestIdHeader: 'x-request-id', remainingHeaders: REMAINING_HEADERS },
        },
        context,
        name,
        classify,
      );
      const body = (await readJsonBody(response, name, context.signal)) as { model?: string; data?: EmbeddingsResult['data']; usage?: OpenAIUsage };
      // Embeddings generate nothing: only a missing prompt count is left for the account stage to estimate.
      const usage = usageFromOpenAI({ ...body.usage, completion_tokens: body.usage?.completion_tokens ?? 0 } as OpenAIUsage) as Usage;
      return { model: body.model ?? context.model, data: body.data ?? [], usage };
    },
  };
}

/** How the compatible services appear in the shipped price catalog (OpenAI's own: providers/openai/index.ts). */
export const OPENAI_COMPATIBLE_CATALOG_ALIASES: Readonly<Record<string, CatalogAliases>> = {
  groq: { providers: ['groq'], modelPrefixes: ['groq/'] },
  mistral: { providers: ['mistral'], modelPrefixes: ['mistral/'] },
  deepseek: { providers: ['deepseek'], modelPrefixes: ['deepseek/'] },
  together: { providers: ['together_ai'], modelPrefixes: ['together_ai/'] },
};

const configSchema = Type.Object({ baseUrl: Type.Optional(Type.String({ format: 'uri' })) });

export interface CompatibleProviderSpec {
  name: string;
  defaultBaseUrl: string;
  modelPatterns: RegExp[];
  modelNameForms?: ProviderAdapter['modelNameForms'];
  catalogAliases?: CatalogAliases;
  modelClasses?: ProviderModelClasses;
  description: string;
  native?: OpenAICompatibleOptions['native'];
  /** Makes ProviderAdapter.loadTokenizer, given the plugin's logger (a tokenizer thread says it started). */
  tokenizerLoader?: (logger: Logger) => OpenAICompatibleOptions['loadTokenizer'];
}

/** A provider plugin for one OpenAI-compatible service: its name, address, model names and catalog aliases. */
export function compatiblePlugin(spec: CompatibleProviderSpec) {
  const environmentVariable = `KEYWAY_${spec.name.toUpperCase()}_BASE_URL`;
  return definePlugin({
    name: `provider-${spec.name}`,
    version: '1.0.0',
    apiVersion: PLUGIN_API_VERSION,
    kind: 'provider',
    description: spec.description,
    configSchema,
    environment: [
      { name: environmentVariable, description: `The ${spec.name} API address` },
      { name: 'KEYWAY_TOKENIZERS', description: 'off: count prompt tokens by a byte bound, with no tokenizer tables in memory' },
    ],
    setup(context) {
      // Read now, as every switch is (off, false, no, 0): `false` once left the tokenizer on.
      const tokenizers = onOffSetting('KEYWAY_TOKENIZERS', context.env.KEYWAY_TOKENIZERS, true);
      return {
        provider: createOpenAICompatibleAdapter({
          name: spec.name,
          defaultBaseUrl: spec.defaultBaseUrl,
          baseUrl: configuredBaseUrl(context, `provider-${spec.name}`, environmentVariable),
          modelPatterns: spec.modelPatterns,
          modelNameForms: spec.modelNameForms,
          catalogAliases: spec.catalogAliases,
          modelClasses: spec.modelClasses,
          fetch: context.fetch,
          native: spec.native,
          // KEYWAY_TOKENIZERS=off keeps every budget on the byte bound (no tokenizer tables in memory).
          loadTokenizer: tokenizers ? spec.tokenizerLoader?.(context.logger) : undefined,
        }),
      };
    },
  });
}

/**
 * Well-known OpenAI-compatible services, each usable by name in `POST /v1/providers/keys`.
 * Any other OpenAI-compatible server works through the `openai` provider with `settings.base_url`.
 */
export const openAICompatibleProviderPlugins = [
  compatiblePlugin({
    name: 'groq',
    defaultBaseUrl: 'https://api.groq.com/openai/v1',
    modelPatterns: [],
    catalogAliases: OPENAI_COMPATIBLE_CATALOG_ALIASES.groq,
    description: 'Groq (OpenAI-compatible)',
  }),
  compatiblePlugin({
    name: 'mistral',
    defaultBaseUrl: 'https://api.mistral.ai/v1',
    modelPatterns: [/^(mistral|open-mistral|codestral|ministral|pixtral)-/],
    catalogAliases: OPENAI_COMPATIBLE_CATALOG_ALIASES.mistral,
    description: 'Mistral (OpenAI-compatible)',
  }),
  compatiblePlugin({
    name: 'deepseek',
    defaultBaseUrl: 'https://api.deepseek.com/v1',
    modelPatterns: [/^deepseek-/],
    catalogAliases: OPENAI_COMPATIBLE_CATALOG_ALIASES.deepseek,
    description: 'DeepSeek (OpenAI-compatible)',
  }),
  compatiblePlugin({
    name: 'together',
    defaultBaseUrl: 'https://api.together.xyz/v1',
    modelPatterns: [],
    catalogAliases: OPENAI_COMPATIBLE_CATALOG_ALIASES.together,
    description: 'Together AI (OpenAI-compatible)',
  }),
  compatiblePlugin({ name: 'ollama', defaultBaseUrl: 'http://127.0.0.1:11434/v1', modelPatterns: [], description: 'Ollama (OpenAI-compatible)' }),
  compatiblePlugin({ name: 'vllm', defaultBaseUrl: 'http://127.0.0.1:8000/v1', modelPatterns: [], description: 'vLLM (OpenAI-compatible)' }),
];
