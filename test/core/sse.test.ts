import { describe, expect, test } from 'bun:test';
import { encodeSseData, encodeSseEvent, readSseEvents, SseParser, type SseEvent } from '../../core/wire/sse.ts';

const STREAM = 'event: message_start\ndata: {"a":1}\n\n: keep-alive comment\n\ndata: line one\ndata: line two\n\nevent: done\ndata: [DONE]\n\n';
const EXPECTED: SseEvent[] = [
  { event: 'message_start', data: '{"a":1}' },
  { event: undefined, data: 'line one\nline two' },
  { event: 'done', data: '[DONE]' },
];

function parseInPieces(text: string, size: number): SseEvent[] {
  const parser = new SseParser();
  const events: SseEvent[] = [];
  for (let offset = 0; offset < text.length; offset += size) events.push(...parser.push(text.slice(offset, offset + size)));
  events.push(...parser.end());
  return events;
}

describe('SseParser', () => {
  test.each([['\n'], ['\r\n'], ['\r']])('parses events with %j line endings', (ending) => {
    expect(parseInPieces(STREAM.replaceAll('\n', ending), STREAM.length)).toEqual(EXPECTED);
  });

  test('gives the same events whatever the chunk boundaries, CRLF split included', () => {
    const crlf = STREAM.replaceAll('\n', '\r\n');
    for (const size of [1, 2, 3, 5, 7, 13, 64]) {
      expect(parseInPieces(crlf, size)).toEqual(EXPECTED);
      expect(parseInPieces(STREAM, size)).toEqual(EXPECTED);
    }
  });

  test('a \\r at the end of one chunk and \\n at the start of the next is one line ending', () => {
    const parser = new SseParser();
    expect(parser.push('data: x\r')).toEqual([]);
    expect(parser.push('\n\r\n')).toEqual([{ event: undefined, data: 'x' }]);
  });

  test('an event without its closing blank line is flushed at the end', () => {
    const parser = new SseParser();
    expect(parser.push('data: tail')).toEqual([]);
    expect(parser.end()).toEqual([{ event: undefined, data: 'tail' }]);
  });

  test('a field without a space after the colon and a bare field name', () => {
    expect(parseInPieces('data:compact\n\ndata\n\n', 100)).toEqual([
      { event: undefined, data: 'compact' },
      { event: undefined, data: '' },
    ]);
  });
});

describe('readSseEvents and the encoders', () => {
  test('decodes UTF-8 split across byte chunks and round-trips the encoders', async () => {
    const text = encodeSseEvent('greeting', '{"text":"héllo → 世界"}') + encodeSseData('second');
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let offset = 0; offset < bytes.length; offset += 3) controller.enqueue(bytes.slice(offset, offset + 3));
        controller.close();
      },
    });
    const events: SseEvent[] = [];
    for await (const event of readSseEvents(body)) events.push(event);
    expect(events).toEqual([
      { event: 'greeting', data: '{"text":"héllo → 世界"}' },
      { event: undefined, data: 'second' },
    ]);
  });
});
