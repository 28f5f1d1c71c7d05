import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { portableMessages, toolsWithoutBreakpoints } from '../../core/wire/provider-kit.ts';

/** OpenAI's reasoning models (o-series, gpt-5): `max_completion_tokens` only, and sampling at its defaults. */
export const REASONING_MODEL = /^(o\d|gpt-5)/;

/**
 * The upstream body: the client's request without Keyway's own fields, the provider's model name,
 * the key's defaults where the client said nothing, and stream usage always requested so every
 * streamed call is accounted. A reasoning model gets the request in the form it takes (adaptForReasoning).
 */
export function buildOpenAIChatBody(
  request: ChatRequest,
  model: string,
  settings: ProviderKeySettings,
  target: { provider: string; warnings: string[] },
): Record<string, unknown> {
  const { provider: _provider, routing: _routing, ...body } = request;
  body.model = model;
  // OpenAI's tool messages take text parts only and no message takes a search result: either would
  // cost the whole request a 400.
  body.messages = portableMessages(request.messages, target.provider, target.warnings);
  // A tool's cache breakpoint is Anthropic's (kept when it was to serve): OpenAI has no such field.
  if (request.tools !== undefined) body.tools = toolsWithoutBreakpoints(request.tools);
  if (isSubstituteFor(request.model, model)) leaveOutAnthropicFields(body, model, request.model, target);
  const reasoning = REASONING_MODEL.test(model);
  // A key's temperature default is for the models that take one: a reasoning model refuses any but 1.
  if (!reasoning && body.temperature === undefined && settings.temperature_default !== undefined) body.temperature = settings.temperature_default;
  if (body.max_tokens === undefined && body.max_completion_tokens === undefined && settings.max_tokens_default !== undefined) {
    if (reasoning) body.max_completion_tokens = settings.max_tokens_default;
    else body.max_tokens = settings.max_tokens_default;
  }
  // The name the client sent may carry its provider (`openai/gpt-5`): the model is what follows.
  if (reasoning) adaptForReasoning(body, REASONING_MODEL.test((request.model ?? '').slice((request.model ?? '').lastIndexOf('/') + 1)), target);
  if (body.stream === true) body.stream_options = { ...body.stream_options, include_usage: true };
  return body;
}

/**
 * Anthropic's own parameters, which `/v1/messages` keeps when Anthropic is to serve (thinking, top_k,
 * context management…). An OpenAI-wire substitute for a Claude model refuses them ("Unrecognized
 * request argument"), and that 400 failed the fallback (QA20 seed F7): they were meant for the model
 * the client named, so they are left out, each with a warning. A client that names this server's own
 * model keeps them (vLLM and Together take `top_k`).
 */
const ANTHROPIC_FIELDS = ['thinking', 'top_k', 'context_management', 'inference_geo', 'speed', 'cache_control'] as const;

/** Whether `model` is routing's choice for the model the client named (a fallback's or a class's), not that model. */
function isSubstituteFor(requested: string | undefined, model: string): boolean {
  return requested !== undefined && requested !== '' && requested !== model && !requested.endsWith(`/${model}`);
}

function leaveOutAnthropicFields(
  body: Omit<ChatRequest, 'provider' | 'routing'>,
  model: string,
  requested: string,
  target: { provider: string; warnings: string[] },
): void {
  const fields = body as Record<string, unknown>;
  for (const name of ANTHROPIC_FIELDS) {
    const value = fields[name];
    if (value === undefined) continue;
    delete fields[name];
    if (value === null || value === false) continue;
    const warning = `${target.provider}: ignored '${name}' (Anthropic's parameter, meant for ${requested})`;
    if (!target.warnings.includes(warning)) target.warnings.push(warning);
  }
  // Anthropic's service tier ('standard_only') is no OpenAI tier: OpenAI refuses the value.
  if (fields.service_tier === 'standard_only') {
    delete fields.service_tier;
    const warning = `${target.provider}: ignored 'service_tier' standard_only (Anthropic's tier, meant for ${requested}; ${model} is served at its default tier)`;
    if (!target.warnings.includes(warning)) target.warnings.push(warning);
  }
}

/**
 * A reasoning model refuses `max_tokens` (the same bound is `max_completion_tokens`, which it takes;
 * LiteLLM renames it too), and any `temperature` or `top_p` but 1. When the client named a model that
 * is not a reasoning model and Keyway sent the request to one (a class substitute: cost_optimized, a
 * fallback chain), those sampling settings were meant for the other model: they are left out rather
 * than failing a request that was valid for the model the client named, each with a warning, since the
 * answer differs from what the client asked for (a stop sequence not applied, no logprobs). A client
 * that names a reasoning model itself gets them forwarded, and OpenAI's refusal, as it would calling OpenAI.
 */
function adaptForReasoning(
  body: Omit<ChatRequest, 'provider' | 'routing'>,
  clientNamedReasoning: boolean,
  target: { provider: string; warnings: string[] },
): void {
  if (body.max_tokens !== undefined && body.max_tokens !== null) {
    if (body.max_completion_tokens === undefined || body.max_completion_tokens === null) body.max_completion_tokens = body.max_tokens;
    delete body.max_tokens;
  }
  if (clientNamedReasoning) return;
  const fields = body as Record<string, unknown>;
  const leaveOut = (name: string): void => {
    const value = fields[name];
    delete fields[name];
    // null and false ask for nothing: leaving them out changes nothing the client would notice.
    if (value === undefined || value === null || value === false) return;
    const warning = `${target.provider}: ignored '${name}' (${String(body.model)} is a reasoning model, which refuses it; it was meant for the model the request named)`;
    if (!target.warnings.includes(warning)) target.warnings.push(warning);
  };
  if (body.temperature !== undefined && body.temperature !== 1) leaveOut('temperature');
  if (body.top_p !== undefined && body.top_p !== 1) leaveOut('top_p');
  // Stop sequences and the sampling penalties are refused by reasoning models as well (LiteLLM's
  // `drop_params` drops them too): a substitute answers without them rather than not at all.
  for (const name of REASONING_REFUSES) leaveOut(name);
}

/** The chat fields OpenAI's reasoning models refuse outright, whatever their value. */
const REASONING_REFUSES = ['stop', 'presence_penalty', 'frequency_penalty', 'logprobs', 'top_logprobs', 'logit_bias'] as const;

export function openAIHeaders(apiKey: string, organizationId: string | undefined, stream: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${apiKey}`,
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
  };
  if (organizationId !== undefined) headers['openai-organization'] = organizationId;
  return headers;
}
