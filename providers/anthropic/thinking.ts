// `reasoning_effort` → Anthropic extended thinking, by model generation.

import { invalidField } from '../../core/errors.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { claudeSupportsThinking, type ClaudeCapabilities } from './capabilities.ts';
import type { AnthropicMessage } from './message.ts';

type Block = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

/** Thinking budgets for models that take `budget_tokens` (before 4.6). */
const THINKING_BUDGET: Record<Exclude<ReasoningEffort, 'none'>, number> = { minimal: 1024, low: 2048, medium: 8192, high: 16384, xhigh: 32768 };
/** `output_config.effort` for models with adaptive thinking (OpenAI has no `max`). */
const ADAPTIVE_EFFORT: Record<Exclude<ReasoningEffort, 'none'>, string> = { minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'xhigh' };
const MINIMUM_THINKING_BUDGET = 1024;
/** Kept free for the visible answer: thinking counts toward max_tokens. */
const ANSWER_RESERVE_TOKENS = 1024;

export interface ThinkingPlan {
  thinking?: Block;
  effort?: string;
}

/** The last assistant turn called tools without thinking blocks: Anthropic refuses thinking then. */
function toolLoopWithoutThinking(messages: AnthropicMessage[]): boolean {
  for (let position = messages.length - 1; position >= 0; position--) {
    const turn = messages[position] as AnthropicMessage;
    if (turn.role !== 'assistant') continue;
    const calledTools = turn.content.some((block) => block.type === 'tool_use');
    return calledTools && !turn.content.some((block) => block.type === 'thinking' || block.type === 'redacted_thinking');
  }
  return false;
}

export interface ThinkingInput {
  request: ChatRequest;
  model: string;
  capabilities: ClaudeCapabilities;
  maxTokens: number;
  toolChoice: Block | undefined;
  messages: AnthropicMessage[];
  warnings: string[];
}

/**
 * `reasoning_effort` → Anthropic thinking; a native `thinking` object from the client wins. Either way
 * thinking is left off, with a warning, when the last assistant turn called tools without thinking
 * blocks to replay (a tool loop another provider served, or whose blocks the client did not keep):
 * Anthropic refuses thinking then ("a final assistant message must start with a thinking block").
 */
export function planThinking(input: ThinkingInput): ThinkingPlan {
  const { request, warnings } = input;
  if (isRecord(request.thinking)) {
    if (!thinkingIsOn(request.thinking) || !toolLoopWithoutThinking(input.messages)) return { thinking: request.thinking };
    warnings.push("anthropic: ignored 'thinking' (the last assistant tool call has no thinking blocks to replay)");
    return {};
  }
  const effort = request.reasoning_effort;
  if (effort === undefined || effort === null || effort === 'none') return {};
  if (typeof effort !== 'string' || !(REASONING_EFFORTS as readonly string[]).includes(effort)) {
    throw invalidField('reasoning_effort', `must be one of ${REASONING_EFFORTS.join(', ')}`);
  }
  const level = effort as Exclude<ReasoningEffort, 'none'>;
  if (!claudeSupportsThinking(input.model)) {
    warnings.push(`anthropic: ignored 'reasoning_effort' (${input.model} has no extended thinking)`);
    return {};
  }
  if (input.toolChoice?.type === 'any' || input.toolChoice?.type === 'tool') {
    warnings.push("anthropic: ignored 'reasoning_effort' (thinking cannot be combined with a forced tool_choice)");
    return {};
  }
  if (toolLoopWithoutThinking(input.messages)) {
    warnings.push("anthropic: ignored 'reasoning_effort' (the last assistant tool call has no thinking_blocks to replay)");
    return {};
  }
  if (input.capabilities.adaptiveThinking) return { thinking: { type: 'adaptive' }, effort: ADAPTIVE_EFFORT[level] };
  const budget = Math.min(THINKING_BUDGET[level], input.maxTokens - ANSWER_RESERVE_TOKENS);
  if (budget < MINIMUM_THINKING_BUDGET) {
    warnings.push(`anthropic: ignored 'reasoning_effort' (max_tokens ${input.maxTokens} leaves no room for the 1024-token minimum thinking budget)`);
    return {};
  }
  return { thinking: { type: 'enabled', budget_tokens: budget } };
}

export function thinkingIsOn(thinking: Block | undefined): boolean {
  return thinking?.type === 'enabled' || thinking?.type === 'adaptive';
}
