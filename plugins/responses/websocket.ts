// The Responses API's WebSocket mode on `GET /v1/responses` (Upgrade: websocket), as OpenAI serves it
// and Codex CLI uses it (docs/api.md, "WebSocket mode"). The key is checked at the upgrade; then each
// `response.create` text frame is one `POST /v1/responses` with `stream: true` run by the one
// lifecycle runner (auth again, policies, budgets, routing, fallbacks, one usage row), its typed
// events sent one JSON per text frame, exactly as the SSE transport writes them. One response runs
// at a time per socket; later frames wait their turn. Failures before the first event are an
// `error` event carrying the HTTP status Codex reads; the socket stays open.

import { descriptorFromError, KeywayError, openAIErrorBody } from '../../core/errors.ts';
import type { ChatOperation } from '../../core/spec/dialect.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import type { WebSocketHandler, WebSocketPeer } from '../../core/spec/websocket.ts';
import { SseParser } from '../../core/wire/sse.ts';
import { holdsClientKey, looksLikeSecret } from '../../core/wire/secret-fields.ts';
import type { ConnectionMemory, ContinuationContext } from './dialect.ts';
import { echoOf, newResponseId } from './response.ts';
import type { ResponseStore } from './store.ts';
import { ResponsesStreamEncoder } from './stream-encoder.ts';

type Json = Record<string, unknown>;

/** Frames waiting behind the response in flight; Codex sends one at a time, so this bounds a misbehaving client only. */
const MAX_QUEUED = 16;

/** Upgrade headers that describe the socket, not the request each turn stands for. */
const SOCKET_HEADERS = [
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'content-length',
  'content-type',
  'transfer-encoding',
  'x-request-id',
];

/** Answer headers that say nothing to a socket client. */
const BODY_HEADERS = new Set(['content-type', 'content-length', 'transfer-encoding']);

export interface ResponsesSocketOptions {
  services: Services;
  operation: ChatOperation;
  store: ResponseStore | undefined;
  attachMemory(headers: Headers, memory: ConnectionMemory): void;
  previousItems(body: Json, context: ContinuationContext): Json[];
  /** Reads a stored response a turn continues from the database before the lifecycle runs (index.ts). */
  preload(request: Request): Promise<void>;
  /** The age after which a socket takes no new response (OpenAI's 60 minutes); 0: no limit. */
  maxAgeMs: number;
}

/**
 * The upgrade request's check: a key that cannot call models, or that may not be used from the
 * client's address (the management guards: allowed_ips of the key and its team), is refused before
 * any socket exists (401 or 403, as an HTTP answer Codex reads), then the socket's handler.
 */
export function acceptResponsesSocket(options: ResponsesSocketOptions, request: Request, clientAddress: () => string | undefined): WebSocketHandler {
  // Read once, at the upgrade: after it the server cannot tell a socket's address, and every turn
  // would come from "an unknown address" (QA12 D2). `admit` runs the guards before the X-Team-ID and
  // role checks, as everywhere, so a stolen key used from elsewhere learns nothing of what it may do.
  const address = clientAddress();
  const atUpgrade = (): string | undefined => address;
  const principal = options.services.auth.admit(request.headers, atUpgrade);
  if (principal.role === 'viewer' || !principal.byokAccess)
    throw options.services.errors.create('byok_access_denied', { detail: 'This key may read usage but not call models.' });
  const socket = new ResponsesSocket(options, request, atUpgrade);
  return {
    message: (peer, data) => socket.receive(peer, data),
    close: () => socket.closed(),
    stop: () => socket.stop(),
  };
}

/**
 * An `error` event as OpenAI's WebSocket mode sends it: the HTTP status and headers a POST would have
 * had. The headers go in both places clients read them: `error.headers` (the API reference and the
 * official SDKs) and `headers` (Codex).
 */
function errorEvent(status: number, error: Json, headers: Record<string, string> = {}): string {
  return JSON.stringify({ type: 'error', status, error: { ...error, headers }, headers });
}

function errorEventOf(error: unknown, requestId: string): string {
  const descriptor = descriptorFromError(error, requestId);
  return errorEvent(descriptor.status, openAIErrorBody(descriptor).error, { 'x-request-id': requestId });
}

/**
 * The socket's `X-Request-Id` as the prefix of each turn's id (answered in every event, kept on the
 * usage rows), unless it holds a key, the upgrade's own X-Provider-Key included, as the core's requestIdOf.
 */
function requestIdPrefixOf(given: string, headers: Headers): string | undefined {
  const cleaned = given.slice(0, 80).replace(/[^\w.-]/g, '');
  if (cleaned === '' || looksLikeSecret(given) || looksLikeSecret(cleaned) || holdsClientKey(given, headers) || holdsClientKey(cleaned, headers))
    return undefined;
  return cleaned;
}

class ResponsesSocket {
  /** Frames waiting behind the response in flight, each with the request id it was given on arrival. */
  private readonly queue: Array<{ text: string; requestId: string }> = [];
  private readonly memory: ConnectionMemory = { last: undefined };
  private readonly baseHeaders: Headers;
  private readonly url: string;
  private readonly requestIdPrefix: string | undefined;
  private turn = 0;
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly openedAt: number;
  /** Past its age: closed once the response in flight has ended. */
  private closeWhenIdle = false;
  /** The turn in flight: aborted and its stream cancelled when the client leaves. */
  private current: { abort: AbortController; body: ReadableStreamDefaultReader<Uint8Array> | undefined } | undefined;

  constructor(
    private readonly options: ResponsesSocketOptions,
    upgrade: Request,
    private readonly clientAddress: () => string | undefined,
  ) {
    this.baseHeaders = new Headers(upgrade.headers);
    for (const name of SOCKET_HEADERS) this.baseHeaders.delete(name);
    this.baseHeaders.set('content-type', 'application/json');
    // Parsed safely: an upgrade without a Host header has a bare path there, which `new Request` refuses.
    this.url = options.services.http.requestUrl(upgrade).href;
    const given = upgrade.headers.get('x-request-id');
    this.requestIdPrefix = given === null ? undefined : requestIdPrefixOf(given, upgrade.headers);
    this.openedAt = options.services.clock.now();
  }

  receive(peer: WebSocketPeer, data: string | Uint8Array): void {
    const requestId = this.nextRequestId();
    if (typeof data !== 'string') {
      peer.send(errorEventOf(new KeywayError('invalid_request', { detail: 'Send client events as JSON text frames, not binary.' }), requestId));
      return;
    }
    if (this.stopping) {
      peer.send(errorEventOf(new KeywayError('not_ready', { detail: 'Keyway is shutting down; reconnect and send the request again.' }), requestId));
      return;
    }
    if (this.pastAge()) {
      this.refuseAged(peer, requestId);
      return;
    }
    if (this.queue.length >= MAX_QUEUED) {
      const detail = `More than ${MAX_QUEUED} client events are waiting on this socket: one response runs at a time; wait for its response.completed.`;
      peer.send(errorEventOf(new KeywayError('rate_limited', { detail }), requestId));
      return;
    }
    this.queue.push({ text: data, requestId });
    this.running ??= this.drainQueue(peer).finally(() => {
      this.running = undefined;
      if (this.closeWhenIdle) peer.close(1000, 'connection age limit');
    });
  }

  private pastAge(): boolean {
    const { maxAgeMs, services } = this.options;
    return maxAgeMs > 0 && services.clock.now() - this.openedAt >= maxAgeMs;
  }

  /**
   * As OpenAI does after 60 minutes: the new response is refused with `websocket_connection_limit_reached`
   * (Codex and the SDKs reconnect and send it again) and the socket closes once nothing runs on it.
   */
  private refuseAged(peer: WebSocketPeer, requestId: string): void {
    const minutes = Math.round((this.options.maxAgeMs / 60_000) * 100) / 100;
    const detail = `This WebSocket reached its age limit (${minutes} minutes): open a new connection and send the request again.`;
    peer.send(errorEventOf(new KeywayError('websocket_connection_limit_reached', { detail }), requestId));
    this.queue.length = 0;
    if (this.running === undefined) peer.close(1000, 'connection age limit');
    else this.closeWhenIdle = true;
  }

  /** The client left: the response in flight is cancelled like an SSE stream whose client went (booked once). */
  closed(): void {
    this.queue.length = 0;
    const current = this.current;
    if (current === undefined) return;
    current.abort.abort();
    void current.body?.cancel().catch(() => undefined);
  }

  /** Shutdown: nothing new starts; what is in flight ends by itself or at the drain deadline. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.length = 0;
    await this.running;
  }

  private async drainQueue(peer: WebSocketPeer): Promise<void> {
    for (let next = this.queue.shift(); next !== undefined && !peer.closed; next = this.queue.shift()) {
      const { text, requestId } = next;
      try {
        await this.handle(peer, text, requestId);
      } catch (error) {
        // Anything the lifecycle did not answer itself (it never throws) is this file's own failure.
        if (!(error instanceof KeywayError))
          this.options.services.logger.error({ requestId, error: error instanceof Error ? error.stack : String(error) }, 'a WebSocket turn failed');
        await send(peer, errorEventOf(error, requestId));
      }
    }
  }

  private nextRequestId(): string {
    this.turn += 1;
    if (this.requestIdPrefix !== undefined) return `${this.requestIdPrefix}.${this.turn}`;
    return `${newResponseId().replace('resp_', 'req_ws')}`;
  }

  private async handle(peer: WebSocketPeer, text: string, requestId: string): Promise<void> {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      throw new KeywayError('invalid_json', { detail: error instanceof Error ? error.message : 'unreadable' });
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message))
      throw new KeywayError('invalid_request', { detail: 'A client event is a JSON object with a type.' });
    const { type, ...fields } = message as Json;
    if (type === 'response.processed') return; // Codex's acknowledgement of a response it handled: nothing to do.
    if (type === 'response.append')
      throw new KeywayError('unsupported_feature', {
        detail: 'response.append is not available through Keyway: send response.create with previous_response_id and the new input.',
      });
    if (type !== 'response.create')
      throw new KeywayError('invalid_request', { detail: `Unknown client event type '${String(type).slice(0, 60)}': send response.create.` });
    if (fields.generate === false) return this.warmUp(peer, fields, requestId);
    delete fields.generate;
    await this.create(peer, fields, requestId);
  }

  /** A turn's request: the upgrade's headers (its key re-checked by the lifecycle) and this body, streamed. */
  private turnRequest(fields: Json, requestId: string, signal: AbortSignal | undefined): Request {
    const body = JSON.stringify({ ...fields, stream: true });
    const headers = new Headers(this.baseHeaders);
    headers.set('x-request-id', requestId);
    headers.set('content-length', String(Buffer.byteLength(body)));
    const request = new Request(this.url, { method: 'POST', headers, body, signal });
    // The Request holds its own copy of the headers: the lifecycle's context sees that one.
    this.options.attachMemory(request.headers, this.memory);
    return request;
  }

  private async create(peer: WebSocketPeer, fields: Json, requestId: string): Promise<void> {
    const abort = new AbortController();
    const current: NonNullable<ResponsesSocket['current']> = { abort, body: undefined };
    this.current = current;
    try {
      const request = this.turnRequest(fields, requestId, abort.signal);
      await this.options.preload(request);
      const response = await this.options.services.inference.run(request, this.options.operation, this.clientAddress);
      if (response.status !== 200 || response.body === null || !(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
        await send(peer, await errorEventFromAnswer(response));
        return;
      }
      const reader = response.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      current.body = reader;
      // The client may have gone while the stream opened: cancelling books it as a closed stream.
      if (peer.closed) {
        await reader.cancel().catch(() => undefined);
        return;
      }
      await relay(peer, reader);
    } finally {
      this.current = undefined;
    }
  }

  /**
   * `generate: false`: no model call (and so no usage row). The instructions, tools and input are
   * kept as a response with no output that the next turn continues with `previous_response_id`.
   */
  private async warmUp(peer: WebSocketPeer, fields: Json, requestId: string): Promise<void> {
    const request = this.turnRequest(fields, requestId, undefined);
    const principal: Principal = this.options.services.auth.authenticate(request.headers);
    if (typeof fields.model !== 'string' || fields.model === '') throw new KeywayError('missing_field', { param: 'model' }, { param: 'model' });
    await this.options.preload(request);
    const previous = this.options.previousItems(fields, { headers: request.headers, principal });
    const items = [...previous, ...inputItemsOf(fields.input)];
    const store = this.options.store;
    const keepIt = store !== undefined && fields.store !== false;
    const encoder = new ResponsesStreamEncoder({
      responseId: newResponseId(),
      model: fields.model,
      echo: { ...echoOf(fields), store: keepIt },
      onComplete: (response) => {
        const id = String(response.id);
        this.memory.last = { id, items };
        return keepIt && store !== undefined ? store.save(id, { accountId: principal.accountId, teamId: principal.teamId, items, response }) : undefined;
      },
    });
    const events = encoder.end();
    // As on every turn: the stored response's row is written before its client has the final event
    // (made again with `store: false` when the row could not be written).
    const remade = await encoder.settle();
    for (const event of new SseParser().push(remade ?? events)) await send(peer, event.data);
  }
}

/** The body's input as Responses items, as the dialect reads it (a string is one user message). */
function inputItemsOf(input: unknown): Json[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (Array.isArray(input)) return input as Json[];
  if (input === undefined || input === null) return [];
  throw new KeywayError('invalid_field', { param: 'input', detail: 'expected a string or an array of input items' }, { param: 'input' });
}

/** Sends one frame, then waits while the socket's buffer is full: a slow client slows the upstream. */
async function send(peer: WebSocketPeer, text: string): Promise<void> {
  if (!peer.send(text) && !peer.closed) await peer.drained();
}

/** The lifecycle's SSE answer, one event's JSON per text frame, read only as fast as the client takes it. */
async function relay(peer: WebSocketPeer, reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  // Keyway's own stream: its events were held to the size limit where they were read from the
  // upstream, and re-encoding one may add a few characters, which must not end the turn here.
  const parser = new SseParser(Number.POSITIVE_INFINITY);
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const event of parser.push(decoder.decode(value, { stream: true }))) {
      if (peer.closed) return;
      await send(peer, event.data);
    }
  }
}

/** A refused or failed request's JSON answer (the lifecycle's spec-shaped error) as an `error` event. */
async function errorEventFromAnswer(response: Response): Promise<string> {
  const text = await response.text();
  let error: Json | undefined;
  try {
    const parsed = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof parsed === 'object' && parsed !== null) error = parsed as Json;
  } catch {
    error = undefined;
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!BODY_HEADERS.has(name)) headers[name] = value;
  });
  return errorEvent(response.status, error ?? { type: 'api_error', code: 'internal_error', message: 'The request failed.', param: null }, headers);
}
