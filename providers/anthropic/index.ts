import { ANTHROPIC_MODEL_CLASSES } from './model-classes.ts';
import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type CallContext, type ListedModel, type ProviderAdapter, type ProviderCredential } from '../../core/spec/plugin.ts';
import { configuredBaseUrl, getUpstreamJson, listedModel, postUpstream, readJsonBody, resolveBaseUrl, upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { classifyAnthropicError } from './errors.ts';
import { anthropicHeaders, buildAnthropicBody } from './request.ts';
import { parseAnthropicMessage } from './response.ts';
import { anthropicStreamParts } from './stream.ts';
import { createAnthropicMessagesApi } from './native.ts';

export { buildAnthropicBody, claudeCapabilities, translateMessages } from './request.ts';
export { parseAnthropicMessage } from './response.ts';
export { anthropicStreamParts } from './stream.ts';
export { classifyAnthropicError, classifyAnthropicStreamError } from './errors.ts';
export { mapAnthropicStopReason } from './finish-reason.ts';
export { usageFromAnthropic } from './usage.ts';

const PROVIDER = 'anthropic';
export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
import { ANTHROPIC_CATALOG_ALIASES } from './capabilities.ts';
export { ANTHROPIC_CATALOG_ALIASES };
const REMAINING_HEADERS = ['anthropic-ratelimit-requests-remaining'] as const;
/** Enough for every model Anthropic lists; a guard against a paging loop that never ends. */
const MAX_MODEL_PAGES = 20;

/**
 * The body field chat and `countTokens` read the client's `anthropic-beta` header from:
 * the `/v1/messages` route copies the header here (as the SDKs' own `betas` parameter does), and
 * the adapter sends it on as the header, never in the body.
 */
export const NATIVE_BETAS_FIELD = 'betas';

/** Fields `/v1/messages` takes but `/v1/messages/count_tokens` refuses. */
const CREATE_ONLY_FIELDS = [
  'max_tokens',
  'stream',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'metadata',
  'service_tier',
  'container',
  'inference_geo',
  'diagnostics',
];

export interface AnthropicAdapterOptions {
  /** From `KEYWAY_ANTHROPIC_BASE_URL` or the plugin config: a bare host, `/v1/…` is added here. */
  baseUrl: string | undefined;
  fetch: typeof fetch;
}

/** Splits the client's beta flags out of a native body so they travel as the `anthropic-beta` header. */
function takeBetas(body: Record<string, unknown>): { betas: string | undefined; rest: Record<string, unknown> } {
  const { [NATIVE_BETAS_FIELD]: betas, ...rest } = body;
  if (Array.isArray(betas)) return { betas: betas.map(String).join(','), rest };
  return { betas: typeof betas === 'string' ? betas : undefined, rest };
}

export function createAnthropicAdapter(options: AnthropicAdapterOptions): ProviderAdapter {
  // A base URL that already ends in /v1 (some proxies are documented that way) is used as it is.
  const apiRoot = (credential: ProviderCredential) => {
    const base = resolveBaseUrl(credential, options.baseUrl, ANTHROPIC_DEFAULT_BASE_URL);
    return base.endsWith('/v1') ? base : `${base}/v1`;
  };

  async function post(path: string, body: Record<string, unknown>, context: CallContext, betas?: string): Promise<Response> {
    const response = await postUpstream(
      options.fetch,
      {
        url: `${apiRoot(context.credential)}/${path}`,
        headers: anthropicHeaders(context.credential.apiKey, betas),
        body: JSON.stringify(body),
        info: { requestIdHeader: 'request-id', remainingHeaders: REMAINING_HEADERS },
      },
      context,
      PROVIDER,
      classifyAnthropicError,
    );
    return response;
  }

  function translate(request: ChatRequest, context: CallContext, stream: boolean): Record<string, unknown> {
    return buildAnthropicBody({ ...request, stream }, context.model, context.credential.settings, context.warnings);
  }

  async function listModels(credential: ProviderCredential, signal: AbortSignal): Promise<ListedModel[]> {
    const models: ListedModel[] = [];
    let afterId: string | undefined;
    for (let page = 0; page < MAX_MODEL_PAGES; page++) {
      const query = afterId === undefined ? '?limit=1000' : `?limit=1000&after_id=${encodeURIComponent(afterId)}`;
      const body = (await getUpstreamJson(
        options.fetch,
        `${apiRoot(credential)}/models${query}`,
        anthropicHeaders(credential.apiKey),
        signal,
        PROVIDER,
        classifyAnthropicError,
      )) as {
        data?: Array<{ id?: unknown; created_at?: unknown }>;
        has_more?: boolean;
        last_id?: string | null;
      };
      for (const model of body.data ?? []) if (typeof model.id === 'string') models.push(listedModel(model.id, model.created_at));
      if (body.has_more !== true || typeof body.last_id !== 'string' || body.last_id === afterId) break;
      afterId = body.last_id;
    }
    return models;
  }

  return {
    name: PROVIDER,
    defaultBaseUrl: ANTHROPIC_DEFAULT_BASE_URL,
    modelPatterns: [/^claude-/],
    catalogAliases: ANTHROPIC_CATALOG_ALIASES,
    modelClasses: ANTHROPIC_MODEL_CLASSES,
    // Anthropic writes (and bills) a prompt cache only where the request puts `cache_control`.
    cacheWrites: 'marked',
    native: { messages: createAnthropicMessagesApi({ post, takeBetas }) },
    async chat(request, context) {
      const { betas, rest } = takeBetas(request);
      const response = await post('messages', translate(rest as ChatRequest, context, false), context, betas);
      return parseAnthropicMessage(await readJsonBody(response, PROVIDER, context.signal));
    },
    async chatStream(request, context) {
      const { betas, rest } = takeBetas(request);
      const response = await post('messages', translate(rest as ChatRequest, context, true), context, betas);
      if (response.body === null)
        throw upstreamFailure({ provider: PROVIDER, status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return anthropicStreamParts(response.body, context.signal);
    },
    listModels,
    async countTokens(body, context) {
      const { betas, rest } = takeBetas(body);
      const countBody: Record<string, unknown> = { ...rest, model: context.model };
      for (const field of CREATE_ONLY_FIELDS) delete countBody[field];
      const response = await post('messages/count_tokens', countBody, context, betas);
      const answer = await readJsonBody(response, PROVIDER, context.signal);
      if (typeof answer.input_tokens !== 'number')
        throw upstreamFailure({ provider: PROVIDER, status: response.status, reason: 'server_error', message: 'count_tokens answered without input_tokens' });
      return answer.input_tokens;
    },
  };
}

const configSchema = Type.Object({ baseUrl: Type.Optional(Type.String({ format: 'uri' })) });

export const anthropicProviderPlugin = definePlugin({
  name: 'provider-anthropic',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'provider',
  environment: [{ name: 'KEYWAY_ANTHROPIC_BASE_URL', description: 'The Anthropic API address' }],
  description: 'Anthropic Messages API: native translation, streaming, models, token counting and pass-through',
  configSchema,
  setup(context) {
    return {
      provider: createAnthropicAdapter({ baseUrl: configuredBaseUrl(context, 'provider-anthropic', 'KEYWAY_ANTHROPIC_BASE_URL'), fetch: context.fetch }),
    };
  },
});
