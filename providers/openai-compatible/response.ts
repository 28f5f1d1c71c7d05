import { upstreamFailure } from '../../core/wire/provider-kit.ts';
import { unreportedUsage, type ChatMessage, type ChatResult, type OpenAIUsage, type ResultChoice } from '../../core/spec/vocabulary.ts';
import { mapOpenAIFinishReason } from './finish-reason.ts';
import { usageFromOpenAI, withServiceTier } from './usage.ts';

interface OpenAIChoice {
  index?: number;
  message?: ChatMessage;
  finish_reason?: string | null;
  logprobs?: unknown;
}

/** Reads a chat.completion body; the body itself is kept so the OpenAI encoder can send it unchanged. */
export function parseOpenAIChatResponse(provider: string, body: Record<string, unknown>): ChatResult {
  if (!Array.isArray(body.choices)) {
    throw upstreamFailure({ provider, status: 200, reason: 'server_error', message: 'the response has no choices' });
  }
  const choices: ResultChoice[] = (body.choices as OpenAIChoice[]).map((choice, position) => ({
    index: choice.index ?? position,
    message: choice.message ?? { role: 'assistant', content: null },
    finishReason: mapOpenAIFinishReason(choice.finish_reason),
    logprobs: choice.logprobs,
  }));
  return {
    id: typeof body.id === 'string' ? body.id : '',
    model: typeof body.model === 'string' ? body.model : '',
    created: typeof body.created === 'number' ? body.created : Math.floor(Date.now() / 1000),
    choices,
    usage: withServiceTier(usageFromOpenAI(body.usage as OpenAIUsage | undefined) ?? unreportedUsage(), body.service_tier),
    openAIBody: body,
  };
}
