import type { KeywayError } from '../../core/errors.ts';
import { networkFailure, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { OpenAIChunk, StreamPart } from '../../core/spec/vocabulary.ts';
import { classifyOpenAIStreamError } from './errors.ts';

/**
 * What a stream delivered of its ending, for a server that closes without `[DONE]`: several
 * OpenAI-compatible servers do, after a stream that is otherwise whole.
 */
interface StreamEnding {
  /** The highest choice index seen: choices 0 to it each owe a finish_reason. */
  highestChoice: number;
  finishedChoices: Set<number>;
  usage: boolean;
}

/**
 * Turns an OpenAI SSE body into stream parts. Each chunk is kept as raw text for byte-exact
 * forwarding; the parsed form serves accounting and the other encoders. A stream is whole at
 * `[DONE]`, or when it closes after every choice's finish_reason and the usage chunk (Keyway always
 * asks for it: buildOpenAIChatBody); one that closes before is cut, and ends with an error part.
 */
export async function* openAIStreamParts(provider: string, body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<StreamPart> {
  let done = false;
  const ending: StreamEnding = { highestChoice: -1, finishedChoices: new Set(), usage: false };
  try {
    for await (const event of readSseEvents(body, signal)) {
      if (event.data === '[DONE]') {
        done = true;
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
      const chunk = payload as unknown as OpenAIChunk;
      noteEnding(chunk, ending);
      yield { type: 'openai-chunk', raw: event.data, chunk };
    }
  } catch (error) {
    yield errorPart(networkFailure(provider, error, signal));
    return;
  }
  if (done || signal.aborted || isWhole(ending)) return;
  const missing = ending.finishedChoices.size === 0 ? 'a finish_reason' : isFinished(ending) ? 'the usage chunk' : "every choice's finish_reason";
  yield errorPart(upstreamFailure({ provider, status: undefined, reason: 'server_error', message: `the stream ended without [DONE] before ${missing}` }));
}

function noteEnding(chunk: OpenAIChunk, ending: StreamEnding): void {
  if (chunk.usage !== undefined && chunk.usage !== null) ending.usage = true;
  if (!Array.isArray(chunk.choices)) return;
  for (const choice of chunk.choices) {
    const index = typeof choice.index === 'number' ? choice.index : 0;
    if (index > ending.highestChoice) ending.highestChoice = index;
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) ending.finishedChoices.add(index);
  }
}

function isFinished(ending: StreamEnding): boolean {
  return ending.finishedChoices.size > 0 && ending.finishedChoices.size > ending.highestChoice;
}

function isWhole(ending: StreamEnding): boolean {
  return ending.usage && isFinished(ending);
}

function errorPart(error: KeywayError): StreamPart {
  return { type: 'error', error: error.toDescriptor() };
}
