// A bare HTTP/1.1 client over one kept-alive TCP socket, for timing streams. fetch() would hand every
// segment from its HTTP thread to the JavaScript thread and resolve the headers and the first read
// separately; that client-side work lands on the load core and inflates the proxied paths (whose
// headers and first chunk often arrive in separate segments) more than the direct one. Here each
// segment is timestamped in the socket's data callback, as it arrives.

import type { Socket } from 'bun';
import type { StreamSample } from './streaming.ts';

const LINE_FEED = 10;
const CARRIAGE_RETURN = 13;
const HEADER_END = Buffer.from('\r\n\r\n');
const STREAM_TIMEOUT_MS = 15_000;

type BodyFraming = { kind: 'chunked' } | { kind: 'length'; remaining: number } | { kind: 'close' };

/** Parses one response: head, then body (de-chunked), counting SSE events as their blank line arrives. */
class ResponseParser {
  private head = Buffer.alloc(0);
  private framing: BodyFraming | undefined;
  private status = 0;
  // Chunked decoding: the size line being read, the bytes left in the current chunk, and whether the
  // CRLF after a chunk's data is still to be skipped.
  private sizeLine = '';
  private chunkRemaining = 0;
  private skipAfterChunk = 0;
  private previousByte = 0;
  private tail = '';
  readonly sample: StreamSample = { firstByteMs: -1, eventTimesMs: [], sawDone: false };
  finished = false;

  constructor(private readonly startedAt: number) {}

  get statusCode(): number {
    return this.status;
  }

  push(data: Uint8Array, arrivedAt: number): void {
    let bytes = data;
    if (this.framing === undefined) {
      this.head = Buffer.concat([this.head, bytes]);
      const end = this.head.indexOf(HEADER_END);
      if (end === -1) return;
      this.parseHead(this.head.subarray(0, end).toString('latin1'));
      this.sample.headMs = arrivedAt - this.startedAt;
      bytes = this.head.subarray(end + HEADER_END.length);
    }
    const framing = this.framing;
    if (framing === undefined) return;
    if (framing.kind === 'chunked') this.pushChunked(bytes, arrivedAt);
    else {
      this.body(bytes, arrivedAt);
      if (framing.kind === 'length') {
        framing.remaining -= bytes.length;
        if (framing.remaining <= 0) this.finished = true;
      }
    }
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    this.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = headers.get('content-length');
    if (headers.get('transfer-encoding')?.toLowerCase().includes('chunked')) this.framing = { kind: 'chunked' };
    else if (length !== undefined) this.framing = { kind: 'length', remaining: Number(length) };
    else this.framing = { kind: 'close' };
    if (this.framing.kind === 'length' && this.framing.remaining === 0) this.finished = true;
  }

  private pushChunked(bytes: Uint8Array, arrivedAt: number): void {
    let index = 0;
    while (index < bytes.length && !this.finished) {
      if (this.skipAfterChunk > 0) {
        this.skipAfterChunk--;
        index++;
      } else if (this.chunkRemaining > 0) {
        const take = Math.min(this.chunkRemaining, bytes.length - index);
        this.body(bytes.subarray(index, index + take), arrivedAt);
        this.chunkRemaining -= take;
        index += take;
        if (this.chunkRemaining === 0) this.skipAfterChunk = 2;
      } else {
        const byte = bytes[index] ?? 0;
        index++;
        if (byte !== LINE_FEED) {
          this.sizeLine += String.fromCharCode(byte);
          continue;
        }
        const size = Number.parseInt(this.sizeLine.trim(), 16);
        this.sizeLine = '';
        // A zero-size chunk ends the body; trailers never come from these servers.
        if (size === 0) this.finished = true;
        else this.chunkRemaining = size;
      }
    }
  }

  private body(bytes: Uint8Array, arrivedAt: number): void {
    if (bytes.length === 0) return;
    const elapsed = arrivedAt - this.startedAt;
    if (this.sample.firstByteMs < 0) this.sample.firstByteMs = elapsed;
    for (const byte of bytes) {
      if (byte === CARRIAGE_RETURN) continue;
      if (byte === LINE_FEED && this.previousByte === LINE_FEED) {
        this.sample.eventTimesMs.push(elapsed);
        this.previousByte = 0;
        continue;
      }
      this.previousByte = byte;
    }
    this.tail = (this.tail + Buffer.from(bytes).toString('latin1')).slice(-64);
    if (this.tail.includes('data: [DONE]')) this.sample.sawDone = true;
  }
}

/** One kept-alive connection; streams on it run one after another. */
export class RawStreamConnection {
  private parser: ResponseParser | undefined;
  private settle: ((problem: Error | undefined) => void) | undefined;

  private constructor(private socket: Socket<undefined> | undefined) {}

  static async open(hostname: string, port: number): Promise<RawStreamConnection> {
    const connection = new RawStreamConnection(undefined);
    connection.socket = await Bun.connect<undefined>({
      hostname,
      port,
      socket: {
        data: (_socket, data) => connection.onData(data),
        close: () => connection.onEnd(new Error('connection closed')),
        error: (_socket, error) => connection.onEnd(error),
      },
    });
    return connection;
  }

  private onData(data: Uint8Array): void {
    const arrivedAt = performance.now();
    const parser = this.parser;
    if (parser === undefined) return;
    parser.push(data, arrivedAt);
    if (parser.finished) this.settle?.(undefined);
  }

  private onEnd(problem: Error): void {
    const parser = this.parser;
    // A response framed by connection close ends here normally.
    if (parser !== undefined && parser.sample.sawDone) this.settle?.(undefined);
    else this.settle?.(problem);
    this.socket = undefined;
  }

  /** Sends the request and resolves when the whole response has arrived. */
  async stream(host: string, path: string, apiKey: string, body: string): Promise<StreamSample> {
    const socket = this.socket;
    if (socket === undefined) throw new Error('connection is closed');
    const payload = Buffer.from(body);
    const head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${apiKey}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: ${payload.length}\r\n\r\n`;
    const request = Buffer.concat([Buffer.from(head), payload]);
    const startedAt = performance.now();
    const parser = new ResponseParser(startedAt);
    this.parser = parser;
    const done = new Promise<Error | undefined>((resolve) => {
      this.settle = resolve;
    });
    const timer = setTimeout(() => this.settle?.(new Error(`stream not finished after ${STREAM_TIMEOUT_MS} ms`)), STREAM_TIMEOUT_MS);
    // Loopback takes ~1 KB in one write; anything less would mean a broken socket.
    const written = socket.write(request);
    if (written !== request.length) this.settle?.(new Error(`short write (${written} of ${request.length} bytes)`));
    const problem = await done;
    clearTimeout(timer);
    this.parser = undefined;
    this.settle = undefined;
    if (problem !== undefined) throw problem;
    if (parser.statusCode !== 200) throw new Error(`stream answered ${parser.statusCode}`);
    return parser.sample;
  }

  close(): void {
    this.socket?.end();
    this.socket = undefined;
  }
}
