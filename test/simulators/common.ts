// Shared machinery of the provider simulators: a Bun server with a control API, a fault queue and a
// record of every request received. Each simulator maps the generic faults below onto its provider's
// own status codes, error bodies and headers.

export type Fault =
  /** The provider's rate-limit answer (429 with its own body and headers). */
  | { kind: 'rate_limit'; retryAfterSeconds?: number }
  /** 429 for an exhausted quota or billing limit (OpenAI `insufficient_quota`, Cohere 402…). */
  | { kind: 'quota' }
  /** A plain 500 from the provider. */
  | { kind: 'server_error' }
  /** The provider's overloaded answer (Anthropic 529, Gemini 503 UNAVAILABLE, OpenAI 503). */
  | { kind: 'overloaded' }
  /**
   * The provider's answer to a bad key, whatever key was sent; `echo`: its message quotes the key it
   * was sent in that form (keyEcho), as some providers and proxies do.
   */
  | { kind: 'auth'; echo?: KeyEchoForm }
  /** The provider's "model not found" answer. */
  | { kind: 'model_not_found' }
  /** The provider's context-length error (400). */
  | { kind: 'context_length' }
  /** Any status with a raw body, for cases the kinds above do not cover. */
  | { kind: 'status'; status: number; body: unknown; headers?: Record<string, string> }
  /** Wait `delayMs` before answering at all (drives first-byte timeouts). */
  | { kind: 'delay'; delayMs: number }
  /**
   * Hold the answer until `until` settles or `maxMs` passes, whichever is first: a race test releases
   * the upstream once every request has reserved or been refused, however slowly a busy machine got there.
   */
  | { kind: 'hold'; until: Promise<unknown>; maxMs: number }
  /** Drop the connection without an answer. */
  | { kind: 'reset' }
  /** Stream `afterChunks` content events normally, then the provider's in-stream error, then close. */
  | { kind: 'mid_stream_error'; afterChunks: number }
  /** Stream `afterChunks` content events, then cut the connection with no terminator. */
  | { kind: 'mid_stream_reset'; afterChunks: number }
  /** Wait `delayMs` between stream events. */
  | { kind: 'slow_stream'; delayMs: number }
  /**
   * Stream normally but leave out every event of this type (Anthropic's `message_delta`): an upstream
   * or a gateway in front of it that drops an event a well-formed stream has.
   */
  | { kind: 'omit_stream_event'; event: string }
  /**
   * Stream the opening events (message start, role chunk, empty block starts, pings) at once, then wait
   * until `until` settles or `maxMs` passes before the first content event: a reasoning model that
   * thinks before it writes.
   */
  | { kind: 'opening_pause'; until: Promise<unknown>; maxMs: number }
  /**
   * Stream every event at once but the terminator (OpenAI's `[DONE]`), then wait until `until` settles
   * or `maxMs` passes before it: a stream whose answer and usage are all out when something ends it.
   */
  | { kind: 'closing_pause'; until: Promise<unknown>; maxMs: number };

export type OpeningPause = Extract<Fault, { kind: 'opening_pause' }>;
export type ClosingPause = Extract<Fault, { kind: 'closing_pause' }>;

/**
 * The forms in which a refusing provider can quote the key it was sent: whole, a short start cut with a
 * mask, or base64 (standard or URL-safe, with or without padding) of the key or of the credential
 * that carried it (`Bearer <key>`, Basic auth's `:<key>` and `<key>:`).
 */
export const KEY_ECHO_FORMS = [
  'whole',
  'start-ellipsis',
  'start-dots',
  'start-stars',
  'base64',
  'base64-unpadded',
  'base64url',
  'base64url-unpadded',
  'bearer-base64',
  'bearer-base64url-unpadded',
  'basic-password-base64',
  'basic-password-base64url',
  'basic-user-base64',
  'basic-user-base64url-unpadded',
] as const;

export type KeyEchoForm = (typeof KEY_ECHO_FORMS)[number];

function base64(text: string, alphabet: 'base64' | 'base64url', padded: boolean): string {
  const encoded = Buffer.from(text).toString('base64');
  const shaped = alphabet === 'base64' ? encoded : encoded.replaceAll('+', '-').replaceAll('/', '_');
  return padded ? shaped : shaped.replace(/=+$/, '');
}

/** `key` as a provider's message would quote it in `form`. */
export function keyEcho(form: KeyEchoForm, key: string): string {
  switch (form) {
    case 'whole':
      return key;
    case 'start-ellipsis':
      return `${key.slice(0, 7)}…`;
    case 'start-dots':
      return `${key.slice(0, 6)}...`;
    case 'start-stars':
      return `${key.slice(0, 4)}****`;
    case 'base64':
      return base64(key, 'base64', true);
    case 'base64-unpadded':
      return base64(key, 'base64', false);
    case 'base64url':
      return base64(key, 'base64url', true);
    case 'base64url-unpadded':
      return base64(key, 'base64url', false);
    case 'bearer-base64':
      return base64(`Bearer ${key}`, 'base64', true);
    case 'bearer-base64url-unpadded':
      return base64(`Bearer ${key}`, 'base64url', false);
    case 'basic-password-base64':
      return base64(`:${key}`, 'base64', true);
    case 'basic-password-base64url':
      return base64(`:${key}`, 'base64url', true);
    case 'basic-user-base64':
      return base64(`${key}:`, 'base64', true);
    case 'basic-user-base64url-unpadded':
      return base64(`${key}:`, 'base64url', false);
  }
}

export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: unknown;
  receivedAt: number;
}

export interface SimulatorState {
  /** Consumed one per inference request, in order. */
  queue: Fault[];
  /** Applied to every inference request while set (after the queue is empty). */
  sticky: Fault | undefined;
  requests: RecordedRequest[];
  /** Keys the simulator accepts. */
  apiKeys: Set<string>;
}

export interface SimulatorHandle {
  url: string;
  port: number;
  state: SimulatorState;
  /** Queue faults for the next inference requests. */
  inject(...faults: Fault[]): void;
  setSticky(fault: Fault | undefined): void;
  /** Inference requests received so far (control and models calls excluded). */
  inferenceRequests(): RecordedRequest[];
  reset(): void;
  stop(): Promise<void>;
}

export interface SimulatorOptions {
  port?: number;
  apiKeys?: string[];
}

export type SimulatorHandler = (request: Request, context: HandlerContext) => Promise<Response | undefined> | Response | undefined;

export interface HandlerContext {
  url: URL;
  state: SimulatorState;
  /** The fault for this inference request, if any; call once per inference request. */
  takeFault(): Fault | undefined;
  record(body: unknown): void;
  server: import('bun').Server<undefined>;
}

export function nextFault(state: SimulatorState): Fault | undefined {
  return state.queue.shift() ?? state.sticky;
}

export const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

/**
 * Starts a simulator. Control API on every simulator: `POST /__sim/faults` `{faults?: Fault[], sticky?: Fault|null}`,
 * `GET /__sim/requests`, `POST /__sim/reset`.
 */
export function startSimulator(name: string, handler: SimulatorHandler, options: SimulatorOptions = {}): SimulatorHandle {
  const state: SimulatorState = { queue: [], sticky: undefined, requests: [], apiKeys: new Set(options.apiKeys ?? [`${name}-test-key`]) };
  const server = Bun.serve({
    port: options.port ?? 0,
    hostname: '127.0.0.1',
    idleTimeout: 120,
    async fetch(request, bunServer) {
      const url = new URL(request.url);
      if (url.pathname.startsWith('/__sim/')) return control(url, request, state);
      const context: HandlerContext = {
        url,
        state,
        takeFault: () => nextFault(state),
        record(body) {
          const headers: Record<string, string> = {};
          request.headers.forEach((value, key) => {
            headers[key] = value;
          });
          state.requests.push({ method: request.method, path: url.pathname, search: url.search, headers, body, receivedAt: Date.now() });
        },
        server: bunServer,
      };
      const response = await handler(request, context);
      return response ?? new Response(JSON.stringify({ error: `no route ${request.method} ${url.pathname}` }), { status: 404 });
    },
  });
  const port = server.port as number;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    state,
    inject: (...faults) => state.queue.push(...faults),
    setSticky: (fault) => {
      state.sticky = fault;
    },
    inferenceRequests: () => state.requests.filter((request) => request.method === 'POST'),
    reset: () => {
      state.queue = [];
      state.sticky = undefined;
      state.requests = [];
    },
    stop: async () => {
      await server.stop(true);
    },
  };
}

async function control(url: URL, request: Request, state: SimulatorState): Promise<Response> {
  if (url.pathname === '/__sim/faults' && request.method === 'POST') {
    const body = (await request.json()) as { faults?: Fault[]; sticky?: Fault | null };
    if (body.faults) state.queue.push(...body.faults);
    if (body.sticky !== undefined) state.sticky = body.sticky ?? undefined;
    return Response.json({ queued: state.queue.length, sticky: state.sticky ?? null });
  }
  if (url.pathname === '/__sim/requests') return Response.json({ requests: state.requests });
  if (url.pathname === '/__sim/reset' && request.method === 'POST') {
    state.queue = [];
    state.sticky = undefined;
    state.requests = [];
    return Response.json({ ok: true });
  }
  return new Response('unknown control route', { status: 404 });
}

/** Deterministic token estimate shared by every simulator: about four characters a token. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/**
 * The deterministic reply every simulator gives to plain text: echoes the last user text so tests
 * can assert content end to end.
 */
export function echoReply(lastUserText: string): string {
  return `Echo: ${lastUserText}`;
}

/** Splits a reply into stream fragments of a few characters so tests see many chunks. */
export function splitForStream(text: string, size = 8): string[] {
  const fragments: string[] = [];
  for (let offset = 0; offset < text.length; offset += size) fragments.push(text.slice(offset, offset + size));
  return fragments.length === 0 ? [''] : fragments;
}

/** A stream that emits the given frames, applying delays, and that can be cut or cancelled. */
export function frameStream(
  frames: AsyncIterable<string> | Iterable<string>,
  options: { delayMs?: number; resetAfter?: number; server?: import('bun').Server<undefined>; request?: Request } = {},
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      let emitted = 0;
      try {
        for await (const frame of frames) {
          if (options.resetAfter !== undefined && emitted >= options.resetAfter) {
            // Bun writes queued bytes on a later tick; erroring at once would discard them.
            await sleep(10);
            controller.error();
            return;
          }
          if (options.delayMs) await sleep(options.delayMs);
          controller.enqueue(encoder.encode(frame));
          emitted++;
        }
        controller.close();
      } catch {
        // The client went away or the frame source failed: end the body either way.
        try {
          controller.error();
        } catch {
          // already closed
        }
      }
    },
  });
}

/** The frames of a `closing_pause` fault: all but the last at once, the last once the pause is over. */
export async function* pausedBeforeClosing(frames: readonly string[], pause: ClosingPause): AsyncGenerator<string> {
  yield* frames.slice(0, -1);
  await Promise.race([pause.until, sleep(pause.maxMs)]);
  yield* frames.slice(-1);
}

/** The frames of an `opening_pause` fault: the first `openingCount` at once, the rest once the pause is over. */
export async function* pausedAfterOpening(frames: readonly string[], openingCount: number, pause: OpeningPause): AsyncGenerator<string> {
  yield* frames.slice(0, openingCount);
  await Promise.race([pause.until, sleep(pause.maxMs)]);
  yield* frames.slice(openingCount);
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Required properties filled by type, so a gateway can round-trip arguments without a real model. */
export function sampleArguments(schema: unknown): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  if (!isJsonObject(schema)) return result;
  const properties = isJsonObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required.filter((item): item is string => typeof item === 'string') : [];
  for (const name of required) result[name] = sampleValue(properties[name]);
  return result;
}

function sampleValue(schema: unknown): unknown {
  if (!isJsonObject(schema)) return 'sample';
  // An enum's first member keeps the arguments valid where "sample" would not be.
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  switch (schemaType(schema)) {
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return {};
    case 'null':
      return null;
    default:
      return 'sample';
  }
}

function schemaType(schema: Record<string, unknown>): string | undefined {
  const type = schema.type;
  if (typeof type === 'string') return type.toLowerCase();
  if (Array.isArray(type))
    return type
      .filter((item): item is string => typeof item === 'string')
      .find((name) => name.toLowerCase() !== 'null')
      ?.toLowerCase();
  const branches = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : [];
  const first: unknown = branches[0];
  return isJsonObject(first) ? schemaType(first) : undefined;
}

/**
 * A response that makes the client's fetch fail with ECONNRESET: Bun drops the socket when the body
 * errors before any byte is written. Erroring with no reason keeps Bun from logging a stack trace.
 */
export function connectionResetResponse(): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.error();
      },
    }),
  );
}

/**
 * The faults every simulator answers alike: a raw status and body, a connection reset, or a delay
 * (undefined: answer normally once it has passed). Provider-specific kinds answer undefined here.
 */
export async function commonFaultResponse(fault: Fault | undefined, headers: Record<string, string> = {}): Promise<Response | undefined> {
  switch (fault?.kind) {
    case 'status': {
      const { body, status } = fault as Extract<Fault, { kind: 'status' }>;
      const raw = typeof body === 'string';
      return new Response(raw ? (body as string) : JSON.stringify(body), {
        status,
        headers: { ...headers, ...(raw ? {} : { 'content-type': 'application/json' }), ...(fault as Extract<Fault, { kind: 'status' }>).headers },
      });
    }
    case 'reset':
      return connectionResetResponse();
    case 'delay':
      await sleep((fault as Extract<Fault, { kind: 'delay' }>).delayMs);
      return undefined;
    case 'hold': {
      const { until, maxMs } = fault as Extract<Fault, { kind: 'hold' }>;
      await Promise.race([until, sleep(maxMs)]);
      return undefined;
    }
    default:
      return undefined;
  }
}
