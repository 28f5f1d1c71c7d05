// The SSE parser's limit on one event: an upstream line that never ends (QA14, finding 7: one 30 MB
// `data:` line) fails as soon as it passes the limit, instead of being buffered whole; a long line
// arriving in many chunks is not scanned again for each one.

import { describe, expect, test } from 'bun:test';
import { MAX_SSE_EVENT_CHARACTERS, readSseEvents, SseEventTooLong, SseParser, type SseEvent } from '../../core/wire/sse.ts';

const LIMIT = 1_000;

/** Pushes chunks until the parser throws; what it threw and how many characters it had been given. */
function pushUntilThrown(parser: SseParser, chunks: Iterable<string>): { error: unknown; given: number } {
  let given = 0;
  try {
    for (const chunk of chunks) {
      given += chunk.length;
      parser.push(chunk);
    }
  } catch (error) {
    return { error, given };
  }
  return { error: undefined, given };
}

/** A line that does not end: ten times the limit, in chunks (a parser without a limit would take it all). */
function* endlessLine(chunkLength: number): Generator<string> {
  yield 'data: {"choices":[{"delta":{"content":"';
  for (let given = 0; given < LIMIT * 10; given += chunkLength) yield 'x'.repeat(chunkLength);
}

describe('the limit on one event', () => {
  test('is generous for real providers: 16 MiB', () => {
    expect(MAX_SSE_EVENT_CHARACTERS).toBe(16 * 1024 * 1024);
  });

  test('a line that never ends throws as soon as it passes the limit, not when it ends', () => {
    const { error, given } = pushUntilThrown(new SseParser(LIMIT), endlessLine(64));
    expect(error).toBeInstanceOf(SseEventTooLong);
    expect((error as SseEventTooLong).limit).toBe(LIMIT);
    expect((error as Error).message).toBe(`the stream carried an event longer than ${LIMIT} characters`);
    // Within one chunk of the limit.
    expect(given).toBeGreaterThan(LIMIT);
    expect(given).toBeLessThanOrEqual(LIMIT + 64 + 40);
  });

  test("an event's data lines count together", () => {
    const line = `data: ${'y'.repeat(300)}\n`;
    const parser = new SseParser(LIMIT);
    expect(parser.push(line + line + line)).toEqual([]);
    expect(() => parser.push(line)).toThrow(SseEventTooLong);
  });

  test('an event that arrives whole in one chunk is held to the limit too', () => {
    expect(() => new SseParser(LIMIT).push(`data: ${'z'.repeat(LIMIT + 1)}\n\n`)).toThrow(SseEventTooLong);
  });

  test('an event at the limit passes, and the count starts again with the next one', () => {
    const parser = new SseParser(LIMIT);
    // The line as sent counts: `data: `, the value and the line end.
    const whole = 'w'.repeat(LIMIT - 7);
    for (let round = 0; round < 3; round++) expect(parser.push(`data: ${whole}\n\n`)).toEqual([{ event: undefined, data: whole }]);
    expect(() => parser.push(`data: ${whole}w\n\n`)).toThrow(SseEventTooLong);
  });

  test('an event of many empty data lines is held to the limit as sent, not by its (empty) values', () => {
    expect(() => new SseParser(LIMIT).push('data:\n'.repeat(200))).toThrow(SseEventTooLong);
  });

  test('comment lines are lines: one that never ends fails the same way', () => {
    const { error } = pushUntilThrown(new SseParser(LIMIT), [': keep-alive', ...Array.from({ length: 40 }, () => '.'.repeat(50))]);
    expect(error).toBeInstanceOf(SseEventTooLong);
  });
});

describe('a long line in many chunks', () => {
  test('is put back together exactly, whatever the chunk size, CRLF split across chunks included', () => {
    const long = 'L'.repeat(5_000);
    const stream = `data: ${long}\r\n\r\ndata: after\r\n\r\n`;
    for (const size of [1, 7, 64, 4_999, 5_006, 5_007]) {
      const parser = new SseParser();
      const events: SseEvent[] = [];
      for (let offset = 0; offset < stream.length; offset += size) events.push(...parser.push(stream.slice(offset, offset + size)));
      events.push(...parser.end());
      expect(events).toEqual([
        { event: undefined, data: long },
        { event: undefined, data: 'after' },
      ]);
    }
  });

  test('a \\r that ends a long line in one chunk is a line end when the next chunk does not start with \\n', () => {
    const parser = new SseParser();
    expect(parser.push('data: ')).toEqual([]);
    expect(parser.push('a'.repeat(100))).toEqual([]);
    expect(parser.push('\r')).toEqual([]);
    expect(parser.push('\rdata: b\n\n')).toEqual([
      { event: undefined, data: 'a'.repeat(100) },
      { event: undefined, data: 'b' },
    ]);
  });

  test('costs time linear in its length: 12 MiB in 4 KiB chunks is read in well under a second', () => {
    const parser = new SseParser();
    const piece = 'p'.repeat(4_096);
    const started = performance.now();
    parser.push('data: ');
    for (let index = 0; index < 3_072; index++) parser.push(piece);
    const events = parser.push('\n\n');
    const elapsed = performance.now() - started;
    expect(events[0]?.data.length).toBe(12 * 1024 * 1024);
    // Scanning the whole buffer again for each chunk took about 2.5 s here (some 19 G characters copied and scanned).
    expect(elapsed).toBeLessThan(1_000);
  });
});

describe('readSseEvents', () => {
  test('a line that does not end throws SseEventTooLong at the limit and cancels the body, so the upstream stops sending', async () => {
    const encoder = new TextEncoder();
    let cancelled: unknown;
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('data: {"ok":true}\n\ndata: "'));
      },
      pull(controller) {
        // Twice the limit, then the end: a reader without a limit would take it all and never fail.
        if (pulled === (2 * MAX_SSE_EVENT_CHARACTERS) / (64 * 1024)) {
          controller.close();
          return;
        }
        pulled++;
        controller.enqueue(encoder.encode('e'.repeat(64 * 1024)));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const events: SseEvent[] = [];
    let thrown: unknown;
    try {
      for await (const event of readSseEvents(body)) events.push(event);
    } catch (error) {
      thrown = error;
    }
    expect(events).toEqual([{ event: undefined, data: '{"ok":true}' }]);
    expect(thrown).toBeInstanceOf(SseEventTooLong);
    expect(cancelled).toBeInstanceOf(SseEventTooLong);
    // Read up to the limit (256 chunks of 64 KiB), not beyond.
    expect(pulled).toBeLessThanOrEqual(MAX_SSE_EVENT_CHARACTERS / (64 * 1024) + 2);
  });
});
