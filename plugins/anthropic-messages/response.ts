// Provider-neutral ChatResult → Anthropic Messages answer body, for `/v1/messages` clients whose
// request was served by any provider.

import type { ChatMessage, ChatRequest, ChatResult, FinishReason, ResultChoice, Usage } from '../../core/spec/vocabulary.ts';
import { isAnthropicStopReason } from '../../providers/anthropic/finish-reason.ts';

type Block = Record<string, unknown>;

export interface AnthropicUsageBody {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  /** The cache writes by lifetime, as Anthropic reports them, when there were any. */
  cache_creation?: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

export interface AnthropicMessageBody {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: Block[];
  stop_reason: string;
  stop_sequence: string | null;
  usage: AnthropicUsageBody;
}

const STOP_REASON_BY_UNIFIED: Record<FinishReason['unified'], string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  'tool-calls': 'tool_use',
  'content-filter': 'refusal',
  error: 'end_turn',
  other: 'end_turn',
};

/**
 * §7.5 in reverse. An Anthropic upstream's own reason is kept as it was (pause_turn, stop_sequence
 * and model_context_window_exceeded say more than the unified value); another provider that says a
 * stop sequence ended the output (Cohere's STOP_SEQUENCE) gives `stop_sequence` too.
 */
export function stopReasonFromFinish(finishReason: FinishReason | undefined): string {
  if (finishReason === undefined) return 'end_turn';
  if (isAnthropicStopReason(finishReason.raw)) return finishReason.raw as string;
  if (finishReason.stopSequence !== undefined) return 'stop_sequence';
  return STOP_REASON_BY_UNIFIED[finishReason.unified];
}

/** The request's stop sequences (the translation put `stop_sequences` in `stop`). */
export function stopSequencesOf(request: Pick<ChatRequest, 'stop'>): readonly string[] {
  if (typeof request.stop === 'string') return [request.stop];
  return Array.isArray(request.stop) ? request.stop : [];
}

/**
 * `stop_sequence`: the matched string. A provider that names it (Anthropic) is believed; one that only
 * says a sequence matched (Cohere) names the request's sequence when there was only one, else nothing
 * is known (null). Providers that report a match as a plain stop (OpenAI, Gemini) never get here.
 */
export function stopSequenceFromFinish(finishReason: FinishReason | undefined, stopSequences: readonly string[]): string | null {
  const named = finishReason?.stopSequence;
  if (typeof named === 'string') return named;
  if (named === null && stopSequences.length === 1) return stopSequences[0] ?? null;
  return null;
}

/** Anthropic's `input_tokens` excludes the cached parts that Keyway's `inputTokens` includes. */
export function anthropicUsageFromUsage(usage: Usage | undefined): AnthropicUsageBody {
  if (usage === undefined) return { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const body: AnthropicUsageBody = {
    input_tokens: Math.max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens),
    output_tokens: usage.outputTokens,
    cache_creation_input_tokens: usage.cacheWriteInputTokens,
    cache_read_input_tokens: usage.cachedInputTokens,
  };
  if (usage.cacheWriteInputTokens > 0) {
    const oneHour = Math.min(usage.cacheWrite1hInputTokens ?? 0, usage.cacheWriteInputTokens);
    body.cache_creation = { ephemeral_5m_input_tokens: usage.cacheWriteInputTokens - oneHour, ephemeral_1h_input_tokens: oneHour };
  }
  return body;
}

/** Arguments that are not a JSON object become `{}`: Anthropic's `input` is always an object. */
export function toolInputFromArguments(argumentsText: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(argumentsText) as unknown;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through to the empty object
  }
  return {};
}

function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (part.type === 'text' && typeof part.text === 'string') text += part.text;
  return text;
}

/**
 * Thinking first, as Anthropic orders it. Blocks an Anthropic upstream returned are kept whole; a
 * bare `reasoning_content` from another provider becomes a thinking block without a signature.
 */
function thinkingBlocks(message: ChatMessage): Block[] {
  if (Array.isArray(message.thinking_blocks)) return message.thinking_blocks as Block[];
  if (typeof message.reasoning_content === 'string' && message.reasoning_content !== '') {
    return [{ type: 'thinking', thinking: message.reasoning_content, signature: '' }];
  }
  return [];
}

/** An OpenAI refusal's text: Anthropic has no refusal block, so it comes back as text with stop_reason `refusal`. */
function refusalOf(message: ChatMessage): string {
  return typeof message.refusal === 'string' ? message.refusal : '';
}

export function contentBlocksFromMessage(message: ChatMessage): Block[] {
  const blocks = [...thinkingBlocks(message)];
  const text = textOf(message.content);
  if (text !== '') blocks.push({ type: 'text', text });
  const refusal = refusalOf(message);
  if (refusal !== '') blocks.push({ type: 'text', text: refusal });
  for (const call of message.tool_calls ?? []) {
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInputFromArguments(call.function.arguments) });
  }
  return blocks;
}

export function newMessageId(): string {
  return `msg_${crypto.randomUUID().replaceAll('-', '')}`;
}

/** OpenAI refuses with finish_reason `stop`: the refusal is what says why the turn ended. */
function stopReasonOf(choice: ResultChoice | undefined): string {
  if (choice !== undefined && refusalOf(choice.message) !== '') return 'refusal';
  return stopReasonFromFinish(choice?.finishReason);
}

/**
 * The Anthropic answer body for a result; only the first choice exists on this endpoint.
 * `stopSequences`: the request's, to name the one that matched when the provider did not.
 */
export function messagesResponseFromResult(result: ChatResult, stopSequences: readonly string[] = []): AnthropicMessageBody {
  const choice = result.choices[0];
  return {
    id: result.id === '' ? newMessageId() : result.id,
    type: 'message',
    role: 'assistant',
    model: result.model,
    content: choice === undefined ? [] : contentBlocksFromMessage(choice.message),
    stop_reason: stopReasonOf(choice),
    stop_sequence: stopSequenceFromFinish(choice?.finishReason, stopSequences),
    usage: anthropicUsageFromUsage(result.usage),
  };
}
