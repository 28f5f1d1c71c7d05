import { do_not_optimize, group } from 'mitata';
import { StreamObserver } from '../../core/accounting/stream-observer.ts';
import { OpenAIStreamEncoder } from '../../core/wire/openai-encoder.ts';
import { SseParser } from '../../core/wire/sse.ts';
import { CONTENT_CHUNK_DATA, CONTENT_CHUNK_PART, CONTENT_CHUNK_SSE, TEXT_DELTA_PART, USAGE_CHUNK_PART } from './fixtures/stream-chunks.ts';
import { benchmark } from './registry.ts';

/** Per-chunk work while streaming: parse the SSE text, encode for the client, observe for accounting. */
export function registerStreamBenches(): void {
  // One long-lived instance each, as in a stream: every push completes exactly one event.
  const parser = new SseParser();
  const encoder = new OpenAIStreamEncoder(false, 'req_bench', 'gpt-4o');
  const observer = new StreamObserver();
  const textEncoder = new TextEncoder();
  if (parser.push(CONTENT_CHUNK_SSE).length !== 1) throw new Error('the SSE fixture is not one complete event');

  group('stream', () => {
    benchmark(`stream: SseParser.push (one ${CONTENT_CHUNK_SSE.length} B chunk)`, () => do_not_optimize(parser.push(CONTENT_CHUNK_SSE)));
    benchmark('stream: JSON.parse chunk data (openAIStreamParts)', () => do_not_optimize(JSON.parse(CONTENT_CHUNK_DATA)));
    benchmark('stream: OpenAIStreamEncoder.encode openai-chunk', () => do_not_optimize(encoder.encode(CONTENT_CHUNK_PART)));
    benchmark('stream: OpenAIStreamEncoder.encode text-delta', () => do_not_optimize(encoder.encode(TEXT_DELTA_PART)));
    benchmark('stream: StreamObserver.observe content chunk', () => {
      observer.observe(CONTENT_CHUNK_PART);
      do_not_optimize(observer);
    });
    benchmark('stream: StreamObserver.observe usage chunk', () => {
      observer.observe(USAGE_CHUNK_PART);
      do_not_optimize(observer.usage);
    });
    benchmark('stream: TextEncoder.encode frame (streamAnswer enqueue)', () => do_not_optimize(textEncoder.encode(CONTENT_CHUNK_SSE)));
  });
}
