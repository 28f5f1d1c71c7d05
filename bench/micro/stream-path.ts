// The per-chunk streaming path, as streamAnswer (core/lifecycle/respond.ts) runs it: native SSE
// bytes from the upstream body → the provider's stream parts → StreamObserver.observe →
// OpenAIStreamEncoder.encode → TextEncoder. Shorter prefixes of the same path let the allocation
// figures be split by stage.

import { StreamObserver } from '../../core/accounting/stream-observer.ts';
import { OpenAIStreamEncoder } from '../../core/wire/openai-encoder.ts';
import { readSseEvents } from '../../core/wire/sse.ts';
import type { StreamPart, UnifiedFinishReason } from '../../core/spec/vocabulary.ts';
import { anthropicStreamParts } from '../../providers/anthropic/stream.ts';
import { cohereStreamParts } from '../../providers/cohere/stream.ts';
import { geminiStreamParts } from '../../providers/google/stream.ts';
import { openAIStreamParts } from '../../providers/openai-compatible/stream.ts';
import { perplexityStreamParts } from '../../providers/perplexity/stream.ts';
import { nativeStream, type NativeStream, type StreamProvider } from './fixtures/provider-streams.ts';

type PartsReader = (body: ReadableStream<Uint8Array>, signal: AbortSignal, model: string) => AsyncGenerator<StreamPart>;

/** Each provider's entry point, called the way its providers/<name>/index.ts calls it. */
const PARTS_READERS: Record<StreamProvider, PartsReader> = {
  openai: (body, signal) => openAIStreamParts('openai', body, signal),
  anthropic: (body, signal) => anthropicStreamParts(body, signal),
  google: (body, signal, model) => geminiStreamParts(body, signal, model),
  cohere: (body, signal, model) => cohereStreamParts(body, model, signal),
  perplexity: (body, signal) => perplexityStreamParts(body, signal),
};

export interface StreamWorkload {
  native: NativeStream;
  /** One Uint8Array per native event, built once: the chunks themselves are not what is measured. */
  chunks: Uint8Array[];
  readParts: PartsReader;
}

export interface PathTally {
  contentParts: number;
  /** Bytes the client receives for the content parts alone. */
  contentFrameBytes: number;
  totalBytes: number;
  finishReason: UnifiedFinishReason | undefined;
  sawUsage: boolean;
}

const textEncoder = new TextEncoder();

export function streamWorkload(provider: StreamProvider): StreamWorkload {
  const native = nativeStream(provider);
  return { native, chunks: native.events.map((event) => textEncoder.encode(event)), readParts: PARTS_READERS[provider] };
}

/** The upstream body: one chunk per read, as a socket delivering one event at a time. */
export function chunkSource(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let position = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const chunk = chunks[position++];
        if (chunk === undefined) controller.close();
        else controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
}

function isContent(part: StreamPart): boolean {
  if (part.type === 'text-delta') return true;
  return part.type === 'openai-chunk' && typeof part.chunk.choices[0]?.delta.content === 'string' && part.chunk.choices[0].delta.content.length > 0;
}

/** The whole path; returns the bytes sent to the client. */
export async function drainGatewayPath(workload: StreamWorkload): Promise<number> {
  const parts = workload.readParts(chunkSource(workload.chunks), new AbortController().signal, workload.native.model);
  const observer = new StreamObserver();
  const encoder = new OpenAIStreamEncoder(true, 'req_bench', workload.native.model);
  let bytes = 0;
  while (true) {
    const next = await parts.next();
    if (next.done) break;
    observer.observe(next.value);
    const text = encoder.encode(next.value);
    if (text.length > 0) bytes += textEncoder.encode(text).length;
  }
  return bytes + textEncoder.encode(encoder.end()).length;
}

/** The whole path once, counting what it produced, so a broken fixture fails before any figure is taken. */
export async function tallyGatewayPath(workload: StreamWorkload): Promise<PathTally> {
  const parts = workload.readParts(chunkSource(workload.chunks), new AbortController().signal, workload.native.model);
  const observer = new StreamObserver();
  const encoder = new OpenAIStreamEncoder(true, 'req_bench', workload.native.model);
  const tally: PathTally = { contentParts: 0, contentFrameBytes: 0, totalBytes: 0, finishReason: undefined, sawUsage: false };
  for await (const part of parts) {
    if (part.type === 'error') throw new Error(`${workload.native.provider}: the synthetic stream produced an error part: ${part.error.message}`);
    observer.observe(part);
    const frameBytes = textEncoder.encode(encoder.encode(part)).length;
    tally.totalBytes += frameBytes;
    if (isContent(part)) {
      tally.contentParts++;
      tally.contentFrameBytes += frameBytes;
    }
  }
  tally.totalBytes += textEncoder.encode(encoder.end()).length;
  tally.finishReason = observer.finishReason?.unified;
  tally.sawUsage = observer.usage !== undefined;
  return tally;
}

/** Stage 1: only reading the upstream body. */
export async function drainSource(workload: StreamWorkload): Promise<number> {
  const reader = chunkSource(workload.chunks).getReader();
  let bytes = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.length;
  }
}

/** Stage 2: the body decoded and cut into SSE events (core/sse.ts, shared by every provider). */
export async function drainSseEvents(workload: StreamWorkload): Promise<number> {
  let events = 0;
  for await (const event of readSseEvents(chunkSource(workload.chunks), new AbortController().signal)) events += event.data.length > 0 ? 1 : 0;
  return events;
}

/** Stage 3: every event's JSON parsed, the first thing each provider does with it. */
export async function drainParsedEvents(workload: StreamWorkload): Promise<number> {
  let parsed = 0;
  for await (const event of readSseEvents(chunkSource(workload.chunks), new AbortController().signal)) {
    if (event.data.length === 0 || event.data === '[DONE]') continue;
    parsed += JSON.parse(event.data) === null ? 0 : 1;
  }
  return parsed;
}

/** Stage 4: the provider's stream parts, not yet observed or encoded. */
export async function drainParts(workload: StreamWorkload): Promise<number> {
  let parts = 0;
  for await (const part of workload.readParts(chunkSource(workload.chunks), new AbortController().signal, workload.native.model))
    parts += part.type === 'error' ? 0 : 1;
  return parts;
}
