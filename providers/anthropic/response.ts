import { upstreamFailure } from '../../core/wire/provider-kit.ts';
import type { ChatMessage, ChatResult, ToolCall } from '../../core/spec/vocabulary.ts';
import { mapAnthropicStopReason } from './finish-reason.ts';
import { usageFromAnthropic, type AnthropicUsage } from './usage.ts';

type Block = Record<string, unknown>;

function toolCallFrom(block: Block): ToolCall {
  return {
    id: String(block.id ?? ''),
    type: 'function',
    function: { name: String(block.name ?? ''), arguments: JSON.stringify(block.input ?? {}) },
  };
}

/** The parts of an answer an OpenAI-shaped message carries, gathered in one pass over the blocks. */
function messageFromBlocks(blocks: Block[]): ChatMessage {
  let text = '';
  let sawText = false;
  let reasoning = '';
  const toolCalls: ToolCall[] = [];
  const thinkingBlocks: Block[] = [];
  for (const block of blocks) {
    if (block.type === 'text' && typeof block.text === 'string') {
      text += block.text;
      sawText = true;
    } else if (block.type === 'tool_use') {
      toolCalls.push(toolCallFrom(block));
    } else if (block.type === 'thinking') {
      if (typeof block.thinking === 'string') reasoning += block.thinking;
      thinkingBlocks.push({ type: 'thinking', thinking: block.thinking, signature: block.signature });
    } else if (block.type === 'redacted_thinking') {
      thinkingBlocks.push({ type: 'redacted_thinking', data: block.data });
    }
  }
  // OpenAI's convention: content is null on a pure tool-call answer, a string otherwise.
  const message: ChatMessage = { role: 'assistant', content: sawText || toolCalls.length === 0 ? text : null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (thinkingBlocks.length > 0) {
    message.reasoning_content = reasoning;
    // Kept whole, signatures included, so a client can send them back on the next turn.
    message.thinking_blocks = thinkingBlocks;
  }
  return message;
}

/** Reads a Messages API answer (`type: "message"`) into the provider-neutral result. */
export function parseAnthropicMessage(body: Record<string, unknown>): ChatResult {
  if (!Array.isArray(body.content)) {
    throw upstreamFailure({ provider: 'anthropic', status: 200, reason: 'server_error', message: 'the response has no content array' });
  }
  return {
    id: typeof body.id === 'string' ? body.id : '',
    model: typeof body.model === 'string' ? body.model : '',
    created: Math.floor(Date.now() / 1000),
    choices: [
      {
        index: 0,
        message: messageFromBlocks(body.content as Block[]),
        finishReason: mapAnthropicStopReason(typeof body.stop_reason === 'string' ? body.stop_reason : undefined, body.stop_sequence),
      },
    ],
    usage: usageFromAnthropic(body.usage as AnthropicUsage | undefined),
  };
}
