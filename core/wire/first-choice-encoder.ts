// What every stream encoder of a dialect that answers one choice shares (the Anthropic Messages and
// the Responses dialects): parts of the first choice are turned into the dialect's events, the finish
// reason and usage are kept for the closing events, and an OpenAI chunk passed through is taken apart
// into the same calls. Each dialect writes only its events.

import type { ErrorDescriptor, FinishReason, OpenAIChunk, StreamPart, Usage } from '../spec/vocabulary.ts';
import { finishReasonFromOpenAI, usageFromOpenAI } from './openai-shape.ts';

export abstract class FirstChoiceStreamEncoder {
  protected ended = false;
  protected finishReason: FinishReason | undefined;
  protected usage: Usage | undefined;

  encode(part: StreamPart): string {
    if (this.ended) return '';
    switch (part.type) {
      case 'start':
        return this.start(part.id, part.model, part.promptUsage);
      case 'keepalive':
        return this.keepalive();
      case 'text-delta':
        return part.index === 0 ? this.text(part.text) : '';
      case 'reasoning-delta':
        return part.index === 0 ? this.reasoning(part.text, part.signature) : '';
      case 'tool-call-start':
        return part.index === 0 ? this.toolStart(part.toolIndex, part.id, part.name) : '';
      case 'tool-call-delta':
        return part.index === 0 ? this.toolDelta(part.toolIndex, part.argumentsDelta) : '';
      case 'finish':
        if (part.index !== 0) return '';
        this.finishReason = part.finishReason;
        return this.closeOpen();
      case 'usage':
        this.usage = part.usage;
        return '';
      case 'extra-fields':
        this.providerFields(part.fields);
        return '';
      case 'openai-chunk':
        return this.openAIChunk(part.chunk);
      case 'error':
        return this.error(part.error);
      default:
        return '';
    }
  }

  /** The opening events, once; `id` and `model` may be empty when the upstream has not named them. */
  protected abstract start(id: string, model: string, promptUsage?: Usage): string;
  /** A keep-alive the dialect may pass on; dropped unless it says otherwise. */
  protected keepalive(): string {
    return '';
  }
  /** A provider's own top-level fields (Perplexity's citations); dropped unless the dialect has a place for them. */
  protected providerFields(_fields: Record<string, unknown>): void {}
  protected abstract text(text: string): string;
  /** An OpenAI refusal's text (`delta.refusal`); dropped unless the dialect has a place for it. */
  protected refusal(_text: string): string {
    return '';
  }
  protected abstract reasoning(text: string, signature: string | undefined): string;
  protected abstract toolStart(toolIndex: number, id: string, name: string): string;
  protected abstract toolDelta(toolIndex: number, argumentsDelta: string): string;
  /** Closes what the first choice has open once it finished (`finishReason` is set). */
  protected abstract closeOpen(): string;
  protected abstract error(descriptor: ErrorDescriptor): string;

  private openAIChunk(chunk: OpenAIChunk): string {
    let output = this.start(chunk.id ?? '', chunk.model ?? '');
    const choice = chunk.choices?.find((candidate) => candidate.index === 0);
    if (choice !== undefined) {
      const delta = choice.delta ?? {};
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') output += this.reasoning(delta.reasoning_content, undefined);
      if (typeof delta.content === 'string') output += this.text(delta.content);
      if (typeof delta.refusal === 'string' && delta.refusal !== '') output += this.refusal(delta.refusal);
      for (const call of delta.tool_calls ?? []) {
        if (call.id !== undefined && call.function?.name !== undefined) output += this.toolStart(call.index, call.id, call.function.name);
        if (call.function?.arguments) output += this.toolDelta(call.index, call.function.arguments);
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        this.finishReason = finishReasonFromOpenAI(choice.finish_reason);
        output += this.closeOpen();
      }
    }
    const usage = usageFromOpenAI(chunk.usage);
    if (usage !== undefined) this.usage = usage;
    return output;
  }
}
