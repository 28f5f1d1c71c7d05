import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';

/** Reasoning models take `max_completion_tokens`; the deprecated `max_tokens` fails on them. */
const REASONING_MODEL = /^(o\d|gpt-5)/;

/**
 * The upstream body: the client's request without Keyway's own fields, the provider's model name,
 * the key's defaults where the client said nothing, and stream usage always requested so every
 * streamed call is accounted.
 */
export function buildOpenAIChatBody(request: ChatRequest, model: string, settings: ProviderKeySettings): Record<string, unknown> {
  const { provider: _provider, routing: _routing, ...body } = request;
  body.model = model;
  if (body.temperature === undefined && settings.temperature_default !== undefined) body.temperature = settings.temperature_default;
  if (body.max_tokens === undefined && body.max_completion_tokens === undefined && settings.max_tokens_default !== undefined) {
    if (REASONING_MODEL.test(model)) body.max_completion_tokens = settings.max_tokens_default;
    else body.max_tokens = settings.max_tokens_default;
  }
  if (body.stream === true) body.stream_options = { ...body.stream_options, include_usage: true };
  return body;
}

export function openAIHeaders(apiKey: string, organizationId: string | undefined, stream: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${apiKey}`,
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
  };
  if (organizationId !== undefined) headers['openai-organization'] = organizationId;
  return headers;
}
