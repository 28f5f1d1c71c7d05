// Follows a stream as it passes, for accounting: no buffering of content.

import type { FinishReason, OpenAIChunkChoice, StreamPart, Usage } from '../spec/vocabulary.ts';
import { finishReasonFromOpenAI, usageFromOpenAI, withServiceTier } from '../wire/openai-shape.ts';
import { estimateTextTokens } from './token-estimate.ts';

/** The generated text of an OpenAI chunk's delta, weighed as it passes: content, reasoning, refusal, tool calls. */
function deltaTokens(choices: readonly OpenAIChunkChoice[]): number {
  let tokens = 0;
  for (const choice of choices) {
    const delta = choice.delta;
    if (delta === undefined || delta === null) continue;
    if (typeof delta.content === 'string' && delta.content.length > 0) tokens += estimateTextTokens(delta.content);
    if (typeof delta.reasoning_content === 'string' && delta.reasoning_content.length > 0) tokens += estimateTextTokens(delta.reasoning_content);
    if (typeof delta.refusal === 'string' && delta.refusal.length > 0) tokens += estimateTextTokens(delta.refusal);
    if (delta.tool_calls !== undefined) {
      for (const call of delta.tool_calls) {
        const fn = call.function;
        if (fn === undefined) continue;
        if (typeof fn.name === 'string') tokens += estimateTextTokens(fn.name);
        if (typeof fn.arguments === 'string' && fn.arguments.length > 0) tokens += estimateTextTokens(fn.arguments);
      }
    }
  }
  return tokens;
}

export class StreamObserver {
  usage: Usage | undefined;
  /** The prompt's usage as the provider stated it before any output: what a cut stream keeps of its input side. */
  promptUsage: Usage | undefined;
  finishReason: FinishReason | undefined;
  model: string | undefined;
  error: StreamPart | undefined;
  /**
   * An upper estimate of the tokens generated so far (text, reasoning, tool calls), summed delta by
   * delta without keeping the text: what a stream cut before the upstream's usage, or one that ended
   * without a usable output count, is billed for.
   * Each delta is rounded up on its own, so a stream of one-token deltas (OpenAI's) is not under-counted.
   */
  streamedTokens = 0;

  observe(part: StreamPart): void {
    switch (part.type) {
      case 'openai-chunk': {
        const chunk = part.chunk;
        if (this.model === undefined && chunk.model) this.model = chunk.model;
        if (chunk.choices.length > 0) this.streamedTokens += deltaTokens(chunk.choices);
        if (chunk.usage) {
          const usage = usageFromOpenAI(chunk.usage);
          this.usage = usage === undefined ? undefined : withServiceTier(usage, (chunk as { service_tier?: unknown }).service_tier);
        }
        const finish = chunk.choices[0]?.finish_reason;
        if (finish) this.finishReason = finishReasonFromOpenAI(finish);
        return;
      }
      case 'start':
        if (part.model) this.model = part.model;
        if (part.promptUsage !== undefined) this.promptUsage = part.promptUsage;
        return;
      case 'text-delta':
      case 'reasoning-delta':
        if (part.text.length > 0) this.streamedTokens += estimateTextTokens(part.text);
        return;
      case 'tool-call-start':
        this.streamedTokens += estimateTextTokens(part.name);
        return;
      case 'tool-call-delta':
        if (part.argumentsDelta.length > 0) this.streamedTokens += estimateTextTokens(part.argumentsDelta);
        return;
      case 'usage':
        this.usage = part.usage;
        return;
      case 'finish':
        this.finishReason = part.finishReason;
        return;
      case 'native-event':
        if (part.text !== undefined && part.text.length > 0) this.streamedTokens += estimateTextTokens(part.text);
        return;
      case 'error':
        this.error = part;
        return;
      default:
        return;
    }
  }
}
