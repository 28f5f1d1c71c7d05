// Server-sent events: the one parser and the one encoder every provider and endpoint uses.

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/**
 * Incremental SSE parser. Feed it decoded text as it arrives; it returns the events completed so far.
 * Accepts `\n`, `\r\n` and `\r` line endings, multi-line `data:` fields and comment lines.
 */
export class SseParser {
  private buffer = '';
  private eventName: string | undefined = undefined;
  private dataLines: string[] = [];

  push(text: string): SseEvent[] {
    // Most chunks end on an event boundary, leaving nothing behind: skip the concatenation then.
    const buffer = this.buffer.length === 0 ? text : this.buffer + text;
    this.buffer = buffer;
    const events: SseEvent[] = [];
    let lineStart = 0;
    // indexOf scans natively; a chunk holds a few lines, so two searches per line beat a char loop.
    let nextNewline = buffer.indexOf('\n', lineStart);
    let nextReturn = buffer.indexOf('\r', lineStart);
    while (nextNewline !== -1 || nextReturn !== -1) {
      const end = nextReturn === -1 || (nextNewline !== -1 && nextNewline < nextReturn) ? nextNewline : nextReturn;
      let after = end + 1;
      if (end === nextReturn) {
        // A lone \r at the end of the buffer may be the first half of \r\n: wait for more text.
        if (end === buffer.length - 1) break;
        if (buffer.charCodeAt(end + 1) === 10) after = end + 2;
      }
      this.handleLine(buffer.slice(lineStart, end), events);
      lineStart = after;
      if (nextNewline !== -1 && nextNewline < lineStart) nextNewline = buffer.indexOf('\n', lineStart);
      if (nextReturn !== -1 && nextReturn < lineStart) nextReturn = buffer.indexOf('\r', lineStart);
    }
    this.buffer = lineStart === 0 ? buffer : buffer.slice(lineStart);
    return events;
  }

  /** Flushes an event left without its closing blank line when the stream ends. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.buffer.length > 0) {
      this.handleLine(this.buffer, events);
      this.buffer = '';
    }
    this.dispatch(events);
    return events;
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
    if (field === 'data') this.dataLines.push(value);
    else if (field === 'event') this.eventName = value;
  }

  private dispatch(events: SseEvent[]): void {
    if (this.dataLines.length === 0 && this.eventName === undefined) return;
    events.push({ event: this.eventName, data: this.dataLines.length === 1 ? (this.dataLines[0] as string) : this.dataLines.join('\n') });
    this.eventName = undefined;
    this.dataLines = [];
  }
}

/** Reads a byte stream as SSE events, decoding UTF-8 across chunk boundaries. */
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
