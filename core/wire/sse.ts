// Server-sent events: the one parser and the one encoder every provider and endpoint uses.

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/**
 * The longest SSE event Keyway reads, in characters (bytes, for the ASCII that JSON events are): its
 * data lines together as sent, or one line still arriving. Real providers stay far below it; the largest
 * events seen are OpenAI's image results in the Responses API (a base64 PNG, repeated in
 * `response.completed`), a few MB each. An upstream that sends more in one event (a line that never
 * ends) would otherwise be buffered whole before anything failed: 16 MiB, the default request body
 * limit, bounds what one stream can make Keyway hold.
 */
export const MAX_SSE_EVENT_CHARACTERS = 16 * 1024 * 1024;

/**
 * A line still arriving past this many characters is appended to without being searched again: joining
 * and searching the whole buffer for each chunk, as shorter lines are, made a long line quadratic.
 */
const LONG_LINE = 4_096;

/** Thrown by the parser when one event (or one line still arriving) outgrows its limit: the stream cannot be read on. */
export class SseEventTooLong extends Error {
  override name = 'SseEventTooLong';

  constructor(readonly limit: number) {
    super(`the stream carried an event longer than ${limit} characters`);
  }
}

/**
 * Incremental SSE parser. Feed it decoded text as it arrives; it returns the events completed so far.
 * Accepts `\n`, `\r\n` and `\r` line endings, multi-line `data:` fields and comment lines. An event,
 * or a line, longer than `limit` characters throws SseEventTooLong as soon as it gets there.
 */
export class SseParser {
  private buffer = '';
  private eventName: string | undefined = undefined;
  private dataLines: string[] = [];
  /** The characters of the pending event's data lines so far, as sent: what the limit holds, kept as a sum so the check is O(1). */
  private dataLength = 0;
  /** The buffer ends with a `\r` that may be the first half of `\r\n`. */
  private pendingReturn = false;

  constructor(private readonly limit: number = MAX_SSE_EVENT_CHARACTERS) {}

  push(text: string): SseEvent[] {
    const carried = this.buffer.length;
    // What was carried holds no line end, but a last `\r` when pendingReturn: the search starts after it.
    const returnFrom = this.pendingReturn ? carried - 1 : carried;
    let newlineFrom = returnFrom;
    // Only a long carried line is worth a look at the text first: a short one is cheaper to join and
    // search as every chunk is, and the events split across two chunks are short.
    if (carried >= LONG_LINE && !this.pendingReturn) {
      const newline = text.indexOf('\n');
      if (newline === -1 && text.indexOf('\r') === -1) {
        // A line still arriving: appended as a rope, never flattened or scanned again until it ends.
        this.buffer += text;
        this.holdLimit();
        return [];
      }
      // Where the text's first \n is (or that it has none) is known: the search below starts there.
      newlineFrom = carried + (newline === -1 ? text.length : newline);
    }
    if (this.pendingReturn) this.pendingReturn = false;
    // Most chunks end on an event boundary, leaving nothing behind: skip the concatenation then.
    const buffer = carried === 0 ? text : this.buffer + text;
    this.buffer = buffer;
    const events: SseEvent[] = [];
    let lineStart = 0;
    // indexOf scans natively; a chunk holds a few lines, so two searches per line beat a char loop.
    let nextNewline = buffer.indexOf('\n', newlineFrom);
    let nextReturn = buffer.indexOf('\r', returnFrom);
    while (nextNewline !== -1 || nextReturn !== -1) {
      const end = nextReturn === -1 || (nextNewline !== -1 && nextNewline < nextReturn) ? nextNewline : nextReturn;
      let after = end + 1;
      if (end === nextReturn) {
        // A lone \r at the end of the buffer may be the first half of \r\n: wait for more text.
        if (end === buffer.length - 1) {
          this.pendingReturn = true;
          break;
        }
        if (buffer.charCodeAt(end + 1) === 10) after = end + 2;
      }
      this.handleLine(buffer.slice(lineStart, end), events);
      lineStart = after;
      if (nextNewline !== -1 && nextNewline < lineStart) nextNewline = buffer.indexOf('\n', lineStart);
      if (nextReturn !== -1 && nextReturn < lineStart) nextReturn = buffer.indexOf('\r', lineStart);
    }
    this.buffer = lineStart === 0 ? buffer : buffer.slice(lineStart);
    this.holdLimit();
    return events;
  }

  /** Flushes an event left without its closing blank line when the stream ends. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.buffer.length > 0) {
      this.handleLine(this.buffer, events);
      this.buffer = '';
    }
    this.pendingReturn = false;
    this.dispatch(events);
    return events;
  }

  /** What is held for the pending event: its data lines and the line still arriving. Two lengths, no allocation. */
  private holdLimit(): void {
    if (this.buffer.length + this.dataLength > this.limit) throw new SseEventTooLong(this.limit);
  }

  private handleLine(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      this.dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ":" comment or keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      // The line as sent, ending included: an event of many short lines holds more than its values.
      this.dataLength += line.length + 1;
      this.dataLines.push(value);
    } else if (field === 'event') this.eventName = value;
  }

  private dispatch(events: SseEvent[]): void {
    if (this.dataLines.length === 0 && this.eventName === undefined) return;
    // An event that arrived whole within one chunk is held to the limit too.
    if (this.dataLength > this.limit) throw new SseEventTooLong(this.limit);
    events.push({ event: this.eventName, data: this.dataLines.length === 1 ? (this.dataLines[0] as string) : this.dataLines.join('\n') });
    this.eventName = undefined;
    this.dataLines = [];
    this.dataLength = 0;
  }
}

/**
 * Reads a byte stream as SSE events, decoding UTF-8 across chunk boundaries. An event over the
 * parser's limit cancels the body (the upstream would otherwise go on sending what nobody reads)
 * and throws SseEventTooLong.
 */
export async function* readSseEvents(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    while (true) {
      if (signal?.aborted) return;
      const { done, value } = await reader.read();
      if (done) break;
      for (const event of parser.push(decoder.decode(value, { stream: true }))) yield event;
    }
    const tail = decoder.decode();
    if (tail.length > 0) for (const event of parser.push(tail)) yield event;
    for (const event of parser.end()) yield event;
  } catch (error) {
    // Not awaited: the cancel takes effect at once, and a source slow to acknowledge it must not hold the stream's end.
    if (error instanceof SseEventTooLong) reader.cancel(error).catch(() => undefined);
    throw error;
  } finally {
    reader.releaseLock();
  }
}

export function encodeSseData(data: string): string {
  return `data: ${data}\n\n`;
}

export function encodeSseEvent(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
} as const;
