// Each provider's non-streaming translation, loaded on demand: a provider folder that is missing or
// does not (yet) export its builders is skipped with a reason instead of failing the whole run.

import { encodeChatCompletion } from '../../core/wire/openai-encoder.ts';
import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest, ChatResult } from '../../core/spec/vocabulary.ts';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { anthropicResponseBody, cohereResponseBody, geminiResponseBody, openAIResponseBody, perplexityResponseBody } from './fixtures/upstream-responses.ts';

export interface ProviderTranslator {
  provider: string;
  model: string;
  /** False for OpenAI, whose request and response pass through: the baseline, not a translation. */
  translates: boolean;
  requestBuilder: string;
  responseParser: string;
  buildRequest(request: ChatRequest, warnings: string[]): Record<string, unknown>;
  parseResponse(body: Record<string, unknown>): ChatResult;
  responseBody: Record<string, unknown>;
}

export interface LoadedTranslators {
  loaded: ProviderTranslator[];
  skipped: string[];
}

const NO_SETTINGS: ProviderKeySettings = {};

type TranslatorLoader = () => Promise<Omit<ProviderTranslator, 'provider'>>;

const LOADERS: Record<string, TranslatorLoader> = {
  openai: async () => {
    const { buildOpenAIChatBody } = await import('../../providers/openai-compatible/request.ts');
    const { parseOpenAIChatResponse } = await import('../../providers/openai-compatible/response.ts');
    const model = 'gpt-4o';
    return {
      model,
      translates: false,
      requestBuilder: 'buildOpenAIChatBody',
      responseParser: 'parseOpenAIChatResponse',
      buildRequest: (request) => buildOpenAIChatBody(request, model, NO_SETTINGS, { provider: 'openai', warnings: [] }),
      parseResponse: (body) => parseOpenAIChatResponse('openai', body),
      responseBody: openAIResponseBody(),
    };
  },
  anthropic: async () => {
    const { buildAnthropicBody } = await import('../../providers/anthropic/request.ts');
    const { parseAnthropicMessage } = await import('../../providers/anthropic/response.ts');
    const model = 'claude-sonnet-4-5';
    return {
      model,
      translates: true,
      requestBuilder: 'buildAnthropicBody',
      responseParser: 'parseAnthropicMessage',
      buildRequest: (request, warnings) => buildAnthropicBody(request, model, NO_SETTINGS, warnings),
      parseResponse: (body) => parseAnthropicMessage(body),
      responseBody: anthropicResponseBody(),
    };
  },
  google: async () => {
    const { buildGeminiRequest } = await import('../../providers/google/request.ts');
    const { parseGeminiChatResponse } = await import('../../providers/google/response.ts');
    const model = 'gemini-2.5-flash';
    return {
      model,
      translates: true,
      requestBuilder: 'buildGeminiRequest',
      responseParser: 'parseGeminiChatResponse',
      buildRequest: (request, warnings) => buildGeminiRequest(request, model, NO_SETTINGS, warnings),
      parseResponse: (body) => parseGeminiChatResponse(body, model),
      responseBody: geminiResponseBody(),
    };
  },
  cohere: async () => {
    const { buildCohereChatBody } = await import('../../providers/cohere/request.ts');
    const { parseCohereChatResponse } = await import('../../providers/cohere/response.ts');
    const model = 'command-a-03-2025';
    return {
      model,
      translates: true,
      requestBuilder: 'buildCohereChatBody',
      responseParser: 'parseCohereChatResponse',
      buildRequest: (request, warnings) => buildCohereChatBody(request, model, NO_SETTINGS, warnings),
      parseResponse: (body) => parseCohereChatResponse(body, model),
      responseBody: cohereResponseBody(),
    };
  },
  perplexity: async () => {
    const { buildPerplexityChatBody } = await import('../../providers/perplexity/request.ts');
    const { parsePerplexityChatResponse } = await import('../../providers/perplexity/response.ts');
    const model = 'sonar';
    return {
      model,
      translates: true,
      requestBuilder: 'buildPerplexityChatBody',
      responseParser: 'parsePerplexityChatResponse',
      buildRequest: (request, warnings) => buildPerplexityChatBody(request, model, NO_SETTINGS, warnings),
      parseResponse: (body) => parsePerplexityChatResponse(body),
      responseBody: perplexityResponseBody(),
    };
  },
};

/** One real call of each direction, so a half-written provider is skipped here, not mid-run. */
function smokeTest(translator: ProviderTranslator): void {
  const warnings: string[] = [];
  const body = translator.buildRequest(typicalChatRequest(translator.model), warnings);
  if (typeof body !== 'object' || body === null) throw new Error(`${translator.requestBuilder} returned no body`);
  const encodedResult = encodeChatCompletion(translator.parseResponse(translator.responseBody));
  const encoded = (typeof encodedResult === 'string' ? JSON.parse(encodedResult) : encodedResult) as { choices?: unknown[] };
  if (!Array.isArray(encoded.choices) || encoded.choices.length === 0) throw new Error(`${translator.responseParser} produced no choices`);
  // A warning means the fixture strays onto a path a typical request does not take.
  if (warnings.length > 0) throw new Error(`the typical request produced warnings: ${warnings.join('; ')}`);
}

export async function loadTranslators(): Promise<LoadedTranslators> {
  const loaded: ProviderTranslator[] = [];
  const skipped: string[] = [];
  for (const [provider, load] of Object.entries(LOADERS)) {
    try {
      const translator: ProviderTranslator = { provider, ...(await load()) };
      smokeTest(translator);
      loaded.push(translator);
    } catch (error) {
      skipped.push(`${provider}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { loaded, skipped };
}
