// Builds OpenAI chat completion bodies and SSE chunk sequences (§1.3, §1.4 of the provider
// reference) from the deterministic reply plan.

import { splitForStream } from './common.ts';
import { isRecord, planReply, promptTokensFor, randomToken, sseData, SSE_DONE, type JsonObject, type ReplyPlan, type StreamPlan } from './openai-behaviour.ts';
import { isReasoningModel } from './openai-validation.ts';

export const SYSTEM_FINGERPRINT = 'fp_5ee1a7c0de';

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number; audio_tokens: number };
  completion_tokens_details: { reasoning_tokens: number; audio_tokens: number; accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

export interface ChatOutcome {
  id: string;
  created: number;
  model: string;
  serviceTier: string;
  choices: ReplyPlan[];
  usage: ChatUsage;
}

/**
 * Plans every choice of a validated request. `cacheSeen` says whether its prompt_cache_key was seen
 * before, which makes half of the prompt count as cached.
 */
export function planChat(body: JsonObject, cacheSeen: boolean, countPrompt?: (messages: unknown, model: string) => number): ChatOutcome {
  const choiceCount = typeof body.n === 'number' ? body.n : 1;
  const choices = Array.from({ length: choiceCount }, () => planReply(body, { allowToolCalls: true }));
  const promptTokens = countPrompt === undefined ? promptTokensFor(body.messages) : countPrompt(body.messages, String(body.model));
  // A reasoning model asked for an effort thinks before it answers: hidden reasoning tokens that
  // `completion_tokens` includes, as the real API counts them (§1.3).
  const reasoningTokens =
    isReasoningModel(String(body.model)) && typeof body.reasoning_effort === 'string' && body.reasoning_effort !== 'none'
      ? Math.max(8, Math.ceil(promptTokensFor(body.messages) / 2))
      : 0;
  const completionTokens = choices.reduce((sum, choice) => sum + choice.completionTokens, 0) + reasoningTokens;
  const requestedTier = body.service_tier;
  return {
    id: `chatcmpl-${randomToken(29)}`,
    created: Math.floor(Date.now() / 1000),
    model: String(body.model),
    // "auto" resolves to the default tier, which the response then names.
    serviceTier: typeof requestedTier === 'string' && requestedTier !== 'auto' ? requestedTier : 'default',
    choices,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: cacheSeen ? Math.floor(promptTokens / 2) : 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: reasoningTokens, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
  };
}

function toolCallsOf(choice: ReplyPlan): JsonObject[] {
  return choice.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }));
}

export function completionBody(outcome: ChatOutcome): JsonObject {
  return {
    id: outcome.id,
    object: 'chat.completion',
    created: outcome.created,
    model: outcome.model,
    choices: outcome.choices.map((choice, index) => ({
      index,
      message: {
        role: 'assistant',
        content: choice.content,
        ...(choice.toolCalls.length > 0 ? { tool_calls: toolCallsOf(choice) } : {}),
        refusal: null,
        annotations: [],
      },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage: outcome.usage,
    service_tier: outcome.serviceTier,
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

/**
 * The chunk sequence of §1.4: role chunk, content or tool-call deltas, closing chunk, optional usage
 * chunk, [DONE] (left out, when not `terminated`, as some OpenAI-compatible servers do).
 */
export function completionStream(outcome: ChatOutcome, includeUsage: boolean, terminated = true): StreamPlan {
  // With include_usage every chunk carries `usage`: null until the final usage-only chunk.
  const chunk = (choices: JsonObject[], usage: ChatUsage | null = null): string =>
    sseData({
      id: outcome.id,
      object: 'chat.completion.chunk',
      created: outcome.created,
      model: outcome.model,
      service_tier: outcome.serviceTier,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
      ...(includeUsage ? { usage } : {}),
    });
  const delta = (index: number, value: JsonObject, finishReason: string | null = null): string =>
    chunk([{ index, delta: value, logprobs: null, finish_reason: finishReason }]);

  const leading = outcome.choices.map((_, index) => delta(index, { role: 'assistant', content: '' }));
  const content: string[] = [];
  outcome.choices.forEach((choice, index) => {
    if (choice.content !== null) {
      for (const fragment of splitForStream(choice.content)) content.push(delta(index, { content: fragment }));
    }
    choice.toolCalls.forEach((call, callIndex) => {
      content.push(delta(index, { tool_calls: [{ index: callIndex, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
      for (const piece of splitForStream(call.arguments)) {
        content.push(delta(index, { tool_calls: [{ index: callIndex, function: { arguments: piece } }] }));
      }
    });
  });
  const trailing = outcome.choices.map((choice, index) => delta(index, {}, choice.finishReason));
  if (includeUsage) {
    trailing.push(chunk([], outcome.usage));
  }
  if (terminated) trailing.push(SSE_DONE);
  const errorFrame = sseData({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } });
  return { leading, content, trailing, errorFrame };
}

export function wantsUsage(body: JsonObject): boolean {
  return isRecord(body.stream_options) && body.stream_options.include_usage === true;
}
