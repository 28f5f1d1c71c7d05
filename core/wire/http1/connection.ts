// One keep-alive HTTP/1.1 connection over Bun.connect, one exchange at a time. The socket handlers
// are shared by every connection (the connection rides on the socket's `data`), and an exchange is
// its own abort listener and its own body source, so a request allocates no closures.
//
// Response bodies: when the whole body came with the head (the usual small JSON answer) the Response
// holds those bytes; otherwise it streams through a ReadableStream that pauses the socket while the
// consumer is behind (desiredSize <= 0) and resumes it on the next pull.

import { isIP } from 'node:net';
import type { Socket, SocketHandler } from 'bun';
import { BodyDecoder } from './body.ts';
import { asConnectionError, codeOf, StaleConnectionError, UpstreamConnectionError } from './errors.ts';
import { MAX_HEAD_BYTES, parseHead, type ResponseHead } from './head.ts';

export interface ConnectionTarget {
  /** `scheme//hostname:port`, the pool's key. */
  origin: string;
  /** Without IPv6 brackets. */
  hostname: string;
  port: number;
  secure: boolean;
}

export interface TlsSettings {
  /** Certificates to trust instead of the built-in list (NODE_EXTRA_CA_CERTS is honoured either way). */
  ca?: string | string[];
  /** Left unset, Bun's default: verify, unless NODE_TLS_REJECT_UNAUTHORIZED=0. */
  rejectUnauthorized?: boolean;
}

export interface ConnectionOwner {
  release(connection: Http1Connection): void;
  forget(connection: Http1Connection): void;
}

/** Methods whose request may be sent twice (RFC 9110 9.2.2): a reused connection that closes before answering is retried for them. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const HEAD_END = '\r\n\r\n';
/** How much of a streamed body may wait for its reader before the socket is paused. */
const BODY_BUFFER_BYTES = 64 * 1024;
const byteLength = (chunk: Uint8Array | undefined): number => chunk?.byteLength ?? 0;

class Exchange {
  head: ResponseHead | undefined;
  decoder: BodyDecoder | undefined;
  controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** Whether any byte of the answer arrived. */
  received = false;
  /** Whether the socket refused the request's first write: nothing of it left this process. */
  unsent = false;
  settled = false;

  constructor(
    readonly connection: Http1Connection,
    readonly method: string,
    readonly signal: AbortSignal | undefined,
    readonly reused: boolean,
    readonly resolve: (response: Response) => void,
    readonly reject: (error: unknown) => void,
  ) {}

  readonly enqueue = (piece: Buffer): void => this.controller?.enqueue(piece);

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller;
  }

  pull(): void {
    this.connection.resumeReading();
  }

  cancel(): void {
    this.connection.abandon(this);
  }

  /** The abort listener. */
  handleEvent(): void {
    this.connection.abandon(this, this.signal?.reason);
  }
}

export class Http1Connection {
  socket: Socket<Http1Connection> | undefined;
  /** Exchanges this connection has completed; above zero, it came from the pool. */
  served = 0;
  idleSince = 0;
  closed = false;
  lastError: unknown;
  opening: { resolve: (connection: Http1Connection) => void; reject: (error: unknown) => void; verify: boolean } | undefined;
  private exchange: Exchange | undefined;
  private partialHead: Buffer | undefined;
  private pendingWrite: Buffer | undefined;
  private paused = false;

  constructor(
    readonly target: ConnectionTarget,
    private readonly owner: ConnectionOwner,
  ) {}

  /** Writes one serialised request and resolves with the answer's head (and a body to read). */
  send(request: string | Buffer, byteLength: number, method: string, signal: AbortSignal | undefined): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const exchange = new Exchange(this, method, signal, this.served > 0, resolve, reject);
      this.exchange = exchange;
      signal?.addEventListener('abort', exchange);
      const written = this.closed || this.socket === undefined ? -1 : this.socket.write(request);
      if (written < 0) {
        exchange.unsent = true;
        this.closedBy(undefined);
      } else if (written < byteLength) {
        this.pendingWrite = (typeof request === 'string' ? Buffer.from(request) : request).subarray(written);
      }
      // Written from outside a socket callback, the bytes can wait in Bun's cork buffer until the loop
      // comes round; under load that added tens of milliseconds before the upstream saw the request.
      this.socket?.flush();
    });
  }

  /** The rest of a request the socket could not take at once. */
  flush(): void {
    const pending = this.pendingWrite;
    if (pending === undefined || this.socket === undefined) return;
    const written = this.socket.write(pending);
    this.pendingWrite = written >= 0 && written < pending.length ? pending.subarray(written) : undefined;
  }

  receive(chunk: Buffer): void {
    const exchange = this.exchange;
    if (exchange === undefined) {
      // Bytes no request asked for: the connection is out of step and cannot be trusted again.
      this.destroy();
      return;
    }
    exchange.received = true;
    try {
      if (exchange.decoder === undefined) this.readHead(exchange, chunk);
      else this.readBody(exchange, exchange.decoder, chunk);
    } catch (error) {
      this.fail(exchange, asConnectionError(error, 'EPROTO', 'the upstream answer could not be read'));
    }
  }

  private readHead(exchange: Exchange, chunk: Buffer): void {
    const bytes = this.partialHead === undefined ? chunk : Buffer.concat([this.partialHead, chunk]);
    const end = bytes.indexOf(HEAD_END, 0, 'latin1');
    if (end < 0) {
      if (bytes.length > MAX_HEAD_BYTES) throw new UpstreamConnectionError('EPROTO', 'the upstream answer head is too large');
      this.partialHead = bytes;
      return;
    }
    this.partialHead = undefined;
    const head = parseHead(bytes.toString('latin1', 0, end), exchange.method);
    const rest = bytes.subarray(end + HEAD_END.length);
    if (head.status < 200) {
      // An interim answer (100 Continue, 103 Early Hints) precedes the real one.
      if (rest.length > 0) this.readHead(exchange, rest);
      return;
    }
    exchange.head = head;
    const decoder = new BodyDecoder(head.framing);
    exchange.decoder = decoder;
    const init = { status: head.status, statusText: head.statusText, headers: head.headers };
    if (decoder.done || (head.framing.kind === 'length' && rest.length >= head.framing.length)) {
      const length = head.framing.kind === 'length' ? head.framing.length : 0;
      exchange.settled = true;
      exchange.resolve(new Response(length === 0 ? null : rest.subarray(0, length), init));
      this.complete(exchange, rest.length - length);
      return;
    }
    const stream = new ReadableStream<Uint8Array>(exchange, { highWaterMark: BODY_BUFFER_BYTES, size: byteLength });
    exchange.settled = true;
    exchange.resolve(new Response(stream, init));
    if (rest.length > 0) this.readBody(exchange, decoder, rest);
  }

  private readBody(exchange: Exchange, decoder: BodyDecoder, bytes: Buffer): void {
    const used = decoder.push(bytes, exchange.enqueue);
    if (decoder.done) {
      exchange.controller?.close();
      this.complete(exchange, bytes.length - used);
    } else if (!this.paused && (exchange.controller?.desiredSize ?? 1) <= 0) {
      this.paused = true;
      this.socket?.pause();
    }
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket?.resume();
  }

  /** The answer has been read in full: back to the pool, unless it cannot carry another request. */
  private complete(exchange: Exchange, extraBytes: number): void {
    this.exchange = undefined;
    exchange.signal?.removeEventListener('abort', exchange);
    this.served++;
    if (this.closed || extraBytes !== 0 || exchange.head?.keepAlive !== true) {
      this.destroy();
      return;
    }
    this.idleSince = performance.now();
    this.owner.release(this);
  }

  /** A cancel (the signal, or the body's reader): the connection is in mid-exchange, so it is closed. */
  abandon(exchange: Exchange, reason?: unknown): void {
    if (this.exchange !== exchange) return;
    this.fail(exchange, reason ?? new DOMException('The operation was aborted.', 'AbortError'));
  }

  private fail(exchange: Exchange, error: unknown): void {
    this.exchange = undefined;
    exchange.signal?.removeEventListener('abort', exchange);
    if (!exchange.settled) {
      exchange.settled = true;
      exchange.reject(error);
    } else {
      try {
        exchange.controller?.error(error);
      } catch {
        // the reader already cancelled the stream
      }
    }
    this.destroy();
  }

  /** The socket closed (the peer, a reset, or destroy()). */
  closedBy(error: unknown): void {
    this.closed = true;
    this.owner.forget(this);
    const cause = error ?? this.lastError;
    if (this.opening !== undefined) {
      const opening = this.opening;
      this.opening = undefined;
      opening.reject(asConnectionError(cause, 'ECONNRESET', `the connection to ${this.target.origin} closed while opening`));
    }
    const exchange = this.exchange;
    if (exchange === undefined) return;
    // A close ends a close-delimited body; a reset or a socket error cuts it, and fails it below.
    if (exchange.decoder !== undefined && exchange.head?.framing.kind === 'close' && cause === undefined) {
      this.exchange = undefined;
      exchange.signal?.removeEventListener('abort', exchange);
      exchange.controller?.close();
      return;
    }
    const code = codeOf(cause, 'ECONNRESET');
    if (this.mayRetry(exchange)) {
      this.fail(exchange, new StaleConnectionError('the pooled connection was closed by the upstream'));
      return;
    }
    const when = exchange.decoder === undefined ? 'before answering' : 'before the body ended';
    this.fail(exchange, new UpstreamConnectionError(code, `the upstream closed the connection ${when}`, { cause }));
  }

  /**
   * The stale-connection rule (docs/configuration.md, "Upstream client"): only a reused connection, only
   * before any byte of the answer, and only when sending it twice is harmless — its write was refused
   * (nothing left this process), or the method is idempotent. A reset is not enough for a POST: a server
   * that read the request and then reset the connection may have acted on it.
   */
  private mayRetry(exchange: Exchange): boolean {
    if (!exchange.reused || exchange.received || exchange.decoder !== undefined) return false;
    return exchange.unsent || IDEMPOTENT.has(exchange.method);
  }

  destroy(): void {
    this.owner.forget(this);
    if (this.closed) return;
    this.closed = true;
    this.socket?.terminate();
  }

  handshaken(success: boolean, authorizationError: Error | null): void {
    const opening = this.opening;
    if (opening === undefined) return;
    if (opening.verify && (!success || authorizationError !== null)) {
      this.lastError = authorizationError ?? new UpstreamConnectionError('ECONNRESET', 'the TLS handshake failed');
      this.destroy();
      this.opening = undefined;
      opening.reject(asConnectionError(this.lastError, 'ECONNRESET', `the TLS handshake with ${this.target.origin} failed`));
      return;
    }
    this.opening = undefined;
    opening.resolve(this);
  }

  opened(socket: Socket<Http1Connection>): void {
    this.socket = socket;
    if (this.closed) {
      // Cancelled while connecting.
      socket.terminate();
      return;
    }
    socket.setNoDelay(true);
    if (this.target.secure || this.opening === undefined) return;
    const opening = this.opening;
    this.opening = undefined;
    opening.resolve(this);
  }
}

const HANDLERS: SocketHandler<Http1Connection> = {
  open: (socket) => socket.data.opened(socket),
  handshake: (socket, success, authorizationError) => socket.data.handshaken(success, authorizationError),
  data: (socket, chunk) => socket.data.receive(chunk as Buffer),
  drain: (socket) => socket.data.flush(),
  error: (socket, error) => {
    socket.data.lastError = error;
  },
  close: (socket, error) => socket.data.closedBy(error),
};

/** Opens a connection to `target`; for TLS, resolved once the handshake has verified the certificate. */
export function openConnection(target: ConnectionTarget, owner: ConnectionOwner, tls: TlsSettings, signal: AbortSignal | undefined): Promise<Http1Connection> {
  const connection = new Http1Connection(target, owner);
  const opened = new Promise<Http1Connection>((resolve, reject) => {
    connection.opening = { resolve, reject, verify: tls.rejectUnauthorized !== false };
  });
  const tlsOptions = target.secure ? { ...(isIP(target.hostname) === 0 ? { serverName: target.hostname } : {}), ...tls } : undefined;
  Bun.connect<Http1Connection>({ hostname: target.hostname, port: target.port, data: connection, socket: HANDLERS, tls: tlsOptions }).catch(
    (error: unknown) => {
      const opening = connection.opening;
      connection.opening = undefined;
      connection.closed = true;
      opening?.reject(asConnectionError(error, 'ECONNREFUSED', `could not connect to ${target.origin}`));
    },
  );
  if (signal === undefined) return opened;
  return new Promise<Http1Connection>((resolve, reject) => {
    const onAbort = (): void => {
      connection.opening = undefined;
      connection.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    opened.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
