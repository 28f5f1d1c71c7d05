// Follows a stream as it passes, for accounting: no buffering of content.

import type { FinishReason, StreamPart, Usage } from '../spec/vocabulary.ts';
import { finishReasonFromOpenAI, usageFromOpenAI } from '../wire/openai-shape.ts';

export class StreamObserver {
  usage: Usage | undefined;
  finishReason: FinishReason | undefined;
  model: string | undefined;
  error: StreamPart | undefined;

  observe(part: StreamPart): void {
    switch (part.type) {
      case 'openai-chunk': {
        const chunk = part.chunk;
        if (this.model === undefined && chunk.model) this.model = chunk.model;
        if (chunk.usage) this.usage = usageFromOpenAI(chunk.usage);
        const finish = chunk.choices[0]?.finish_reason;
        if (finish) this.finishReason = finishReasonFromOpenAI(finish);
        return;
      }
      case 'start':
        if (part.model) this.model = part.model;
        return;
      case 'usage':
        this.usage = part.usage;
        return;
      case 'finish':
        this.finishReason = part.finishReason;
        return;
      case 'error':
        this.error = part;
        return;
      default:
        return;
    }
  }
}
