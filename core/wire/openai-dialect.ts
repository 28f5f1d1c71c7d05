// An inbound API format: how results, streams and errors are written for one client dialect.
// The core ships the OpenAI one; the Anthropic Messages dialect is wired in by the composition root.

import { encodeChatCompletion, OpenAIStreamEncoder } from './openai-encoder.ts';
import { openAIErrorBody } from '../errors.ts';
import type { RequestContext } from '../spec/plugin.ts';
import type { ChatResult, ErrorDescriptor, StreamPart } from '../spec/vocabulary.ts';

export interface StreamEncoder {
  /** SSE text for a part ('' when the part shows nothing to this client). */
  encode(part: StreamPart): string;
  /** SSE text that closes a stream that ended well. */
  end(): string;
}

export interface InboundFormat {
  name: string;
  /** The answer body: a string is sent as it is, anything else as JSON. */
  encodeResult(result: ChatResult, context: RequestContext): unknown;
  createStreamEncoder(context: RequestContext, model: string): StreamEncoder;
  errorBody(descriptor: ErrorDescriptor, requestId: string): unknown;
}

export const openAIFormat: InboundFormat = {
  name: 'openai',
  encodeResult: (result) => encodeChatCompletion(result),
  createStreamEncoder: (context, model) => new OpenAIStreamEncoder(context.request.stream_options?.include_usage === true, context.requestId, model),
  errorBody: (descriptor) => openAIErrorBody(descriptor),
};
