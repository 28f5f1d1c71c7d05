import { upstreamFailure } from '../../core/wire/provider-kit.ts';
import { unreportedUsage, type ChatMessage, type ChatResult, type ToolCall } from '../../core/spec/vocabulary.ts';
import { mapCohereFinishReason } from './finish-reason.ts';
import { usageFromCohere, type CohereUsage } from './usage.ts';

export interface CohereContentBlock {
  type?: string;
  text?: string;
  thinking?: string;
}

export interface CohereResponseToolCall {
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: unknown };
}

interface CohereChatResponse {
  id?: string;
  finish_reason?: string;
  message?: {
    role?: string;
    content?: CohereContentBlock[];
    tool_calls?: CohereResponseToolCall[];
    tool_plan?: string;
    citations?: unknown[];
  };
  usage?: CohereUsage;
}

/**
 * Reads a `/v2/chat` answer. Text blocks are joined into OpenAI's string content; what OpenAI has no
 * field for rides on the message as extras: `tool_plan` (the model's stated plan before its tool
 * calls), `citations` (when documents were sent) and `reasoning_content` (thinking blocks, in the
 * field OpenAI-compatible reasoning servers use). Cohere's own usage object is kept as
 * `extraFields.usage_details`.
 */
export function parseCohereChatResponse(body: Record<string, unknown>, model: string): ChatResult {
  const response = body as CohereChatResponse;
  if (response.message === null || typeof response.message !== 'object') {
    throw upstreamFailure({ provider: 'cohere', status: 200, reason: 'server_error', message: 'the response has no message' });
  }
  const blocks = Array.isArray(response.message.content) ? response.message.content : [];
  const text = joinBlocks(blocks, 'text');
  const reasoning = joinBlocks(blocks, 'thinking');
  const toolCalls = (response.message.tool_calls ?? []).map(toOpenAIToolCall);
  const message: ChatMessage = { role: 'assistant', content: text.length === 0 && toolCalls.length > 0 ? null : text };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (typeof response.message.tool_plan === 'string' && response.message.tool_plan.length > 0) message.tool_plan = response.message.tool_plan;
  if (reasoning.length > 0) message.reasoning_content = reasoning;
  if (Array.isArray(response.message.citations) && response.message.citations.length > 0) message.citations = response.message.citations;
  const result: ChatResult = {
    id: typeof response.id === 'string' ? response.id : '',
    model,
    created: Math.floor(Date.now() / 1000),
    choices: [{ index: 0, message, finishReason: mapCohereFinishReason(response.finish_reason) }],
    usage: usageFromCohere(response.usage) ?? unreportedUsage(),
  };
  if (response.usage !== undefined && response.usage !== null) result.extraFields = { usage_details: response.usage };
  return result;
}

function joinBlocks(blocks: CohereContentBlock[], type: 'text' | 'thinking'): string {
  return blocks
    .filter((block) => block.type === type)
    .map((block) => (type === 'text' ? block.text : block.thinking) ?? '')
    .join('');
}

/** Cohere already sends OpenAI's shape; an object `arguments` (seen from older models) is re-encoded. */
export function toOpenAIToolCall(call: CohereResponseToolCall, position: number): ToolCall {
  const argumentsValue = call.function?.arguments;
  return {
    id: typeof call.id === 'string' && call.id.length > 0 ? call.id : `call_${position}`,
    type: 'function',
    function: {
      name: call.function?.name ?? '',
      arguments: typeof argumentsValue === 'string' ? argumentsValue : JSON.stringify(argumentsValue ?? {}),
    },
  };
}
