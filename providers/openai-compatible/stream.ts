import type { KeywayError } from '../../core/errors.ts';
import { networkFailure, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { OpenAIChunk, StreamPart } from '../../core/spec/vocabulary.ts';
import { classifyOpenAIStreamError } from './errors.ts';

/**
 * Turns an OpenAI SSE body into stream parts. Each chunk is kept as raw text for byte-exact
 * forwarding; the parsed form serves accounting and the other encoders.
 */
export async function* openAIStreamParts(provider: string, body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<StreamPart> {
  let finished = false;
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data === '[DONE]') {
        finished = true;
        break;
      }
      if (event.data.length === 0) continue;
      let payload: Record<string, unknown>;
      try {
        payload = JSON.parse(event.data) as Record<string, unknown>;
      } catch {
        yield errorPart(upstreamFailure({ provider, status: undefined, reason: 'server_error', message: 'the stream carried a chunk that is not JSON' }));
        return;
      }
      if (event.event === 'error' || (payload.error !== undefined && payload.choices === undefined)) {
        yield errorPart(classifyOpenAIStreamError(provider, payload));
        return;
      }
      yield { type: 'openai-chunk', raw: event.data, chunk: payload as unknown as OpenAIChunk };
    }
  } catch (error) {
    yield errorPart(networkFailure(provider, error, signal));
    return;
  }
  if (!finished && !signal.aborted) {
    yield errorPart(upstreamFailure({ provider, status: undefined, reason: 'server_error', message: 'the stream ended before [DONE]' }));
  }
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}
