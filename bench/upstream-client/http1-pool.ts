// A minimal keep-alive HTTP/1.1 client over Bun.connect, built to answer issue 15's question: does a
// purpose-built upstream client beat `fetch`? It handles what the bench stub sends (Content-Length
// and chunked bodies, buffered, one request per connection at a time) and nothing else: no timeouts,
// redirects, TLS or streaming. It is a measuring stick, not a client Keyway ships (bench/RESULTS.md).

interface Answer {
  status: number;
  body: Uint8Array;
}

interface Connection {
  socket: { write(data: string | Uint8Array): number } | undefined;
  buffered: Uint8Array;
  waiting: { resolve: (answer: Answer) => void; reject: (error: Error) => void } | undefined;
}

const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

function concat(first: Uint8Array, second: Uint8Array): Uint8Array {
  const joined = new Uint8Array(first.length + second.length);
  joined.set(first);
  joined.set(second, first.length);
  return joined;
}

function indexOfSequence(bytes: Uint8Array, from: number, sequence: readonly number[]): number {
  outer: for (let index = from; index + sequence.length <= bytes.length; index++) {
    for (let offset = 0; offset < sequence.length; offset++) if (bytes[index + offset] !== sequence[offset]) continue outer;
    return index;
  }
  return -1;
}

const CRLF = [13, 10];
const HEAD_END = [13, 10, 13, 10];

/** The body of a complete answer in `bytes`, or undefined while more bytes are needed. */
function completeBody(bytes: Uint8Array, bodyStart: number, length: number, chunked: boolean): Uint8Array | undefined {
  if (!chunked) return bytes.length - bodyStart < length ? undefined : bytes.slice(bodyStart, bodyStart + length);
  const parts: Uint8Array[] = [];
  let at = bodyStart;
  for (;;) {
    const lineEnd = indexOfSequence(bytes, at, CRLF);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(decoder.decode(bytes.subarray(at, lineEnd)), 16);
    if (bytes.length < lineEnd + 2 + size + 2) return undefined;
    if (size === 0) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return parts.reduce((joined, part) => concat(joined, part), EMPTY);
}

export class Http1Pool {
  private readonly idle: Connection[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async post(path: string, headers: Record<string, string>, body: Uint8Array): Promise<Answer> {
    const connection = this.idle.pop() ?? (await this.open());
    let head = `POST ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Length: ${body.length}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    return new Promise<Answer>((resolve, reject) => {
      connection.waiting = { resolve, reject };
      connection.socket?.write(`${head}\r\n`);
      connection.socket?.write(body);
    });
  }

  private async open(): Promise<Connection> {
    const connection: Connection = { socket: undefined, buffered: EMPTY, waiting: undefined };
    connection.socket = await Bun.connect({
      hostname: this.host,
      port: this.port,
      socket: {
        data: (_socket, chunk) => this.receive(connection, chunk),
        close: () => {
          connection.waiting?.reject(new Error('the upstream closed the connection'));
          const index = this.idle.indexOf(connection);
          if (index >= 0) this.idle.splice(index, 1);
        },
        error: (_socket, error) => connection.waiting?.reject(error),
      },
    });
    return connection;
  }

  private receive(connection: Connection, chunk: Uint8Array): void {
    const bytes = connection.buffered.length === 0 ? chunk : concat(connection.buffered, chunk);
    const headEnd = indexOfSequence(bytes, 0, HEAD_END);
    const lines = headEnd < 0 ? [] : decoder.decode(bytes.subarray(0, headEnd)).split('\r\n');
    let length = 0;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (name === 'content-length') length = Number(line.slice(colon + 1));
      else if (name === 'transfer-encoding') chunked = line.includes('chunked');
    }
    const body = headEnd < 0 ? undefined : completeBody(bytes, headEnd + 4, length, chunked);
    if (body === undefined) {
      connection.buffered = bytes.slice();
      return;
    }
    connection.buffered = EMPTY;
    const waiting = connection.waiting;
    connection.waiting = undefined;
    this.idle.push(connection);
    waiting?.resolve({ status: Number(lines[0]?.slice(9, 12)), body });
  }
}
