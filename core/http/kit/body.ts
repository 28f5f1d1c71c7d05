import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import type { Static, TSchema } from '@sinclair/typebox';
import { KeywayError } from '../../errors.ts';
import { scheduleDeadline } from '../../lifecycle/deadlines.ts';
import { refuseMisplacedSecretsOf } from './body-secrets.ts';

/** How deeply a request body's arrays and objects may nest unless `KEYWAY_MAX_JSON_DEPTH` says otherwise. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * How long a request body may take to arrive in full unless `KEYWAY_BODY_TIMEOUT_MS` says otherwise.
 * nginx's `client_body_timeout` is 60 s too, but between two reads; this is the whole body's, so a client
 * trickling a byte now and then is cut off as surely as a silent one. 60 s still carries the default
 * 16 MiB limit over a link of about 2.3 Mbit/s, and a usual chat body (a few KB) arrives in milliseconds.
 */
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;

/** The limits every request body is read within; GatewayConfig's names, so the configuration itself is one. */
export interface BodyLimits {
  /** `KEYWAY_MAX_BODY_BYTES`. */
  maxBodyBytes: number;
  /** `KEYWAY_MAX_JSON_DEPTH`; DEFAULT_MAX_JSON_DEPTH when absent. */
  maxJsonDepth?: number;
  /** `KEYWAY_BODY_TIMEOUT_MS`; DEFAULT_BODY_TIMEOUT_MS when absent. */
  bodyTimeoutMs?: number;
}

/**
 * Reads a JSON body within the limits. The declared length is checked before reading; a body
 * sent without one is counted as it arrives, so an oversized upload is cut off early. Nesting deeper
 * than `maxJsonDepth` is refused before parsing: code that walks a parsed body recursively (translation,
 * validation) must never meet a structure deep enough to exhaust the stack. A management call's body
 * is refused when a field not made for a key holds one (body-secrets.ts): this is the one door every
 * management body comes through, so no route can forget it.
 */
export async function readJson(request: Request, limits: BodyLimits): Promise<unknown> {
  const body = parseJsonText(await readBodyText(request, limits), limits.maxBodyBytes, limits.maxJsonDepth);
  refuseMisplacedSecretsOf(request, body);
  return body;
}

/**
 * An optional JSON body: undefined when none was sent (nothing, or only whitespace), else read as
 * readJson reads one, refusals and all. For a route whose body only adds to what its path says
 * (a member's key re-issued with new `allowed_ips`).
 */
export async function readOptionalJson(request: Request, limits: BodyLimits): Promise<unknown> {
  const text = await readBodyText(request, limits);
  if (text.trim() === '') return undefined;
  const body = parseJsonText(text, limits.maxBodyBytes, limits.maxJsonDepth);
  refuseMisplacedSecretsOf(request, body);
  return body;
}

/**
 * The body of a management call to a route that declares none: an empty one, or `{}`, is fine; any
 * other is refused before the route acts (400 naming its first field, `invalid_json` when it is not
 * JSON, 413 over the size limit), where it used to be dropped unread while the route went ahead: a
 * re-issued key without the `allowed_ips` its caller sent, a webhook secret "set" to the caller's.
 */
export async function refuseUndeclaredBody(request: Request, limits: BodyLimits): Promise<void> {
  if (request.body === null || request.headers.get('content-length') === '0') return;
  // Read from a copy: a handler that reads a body all the same (an out-of-tree route written before
  // routes declared theirs) then finds the `{}` it was sent, not a spent stream and a 500.
  // bun-types declares clone() with the DOM's Request; at run time it is Bun's, like the original.
  const text = await readBodyText(request.clone() as Request, limits);
  if (text.trim() === '') return;
  const body = parseJsonText(text, limits.maxBodyBytes, limits.maxJsonDepth);
  // Before a field is named in the refusal: a key used as a field name must not come back in it.
  refuseMisplacedSecretsOf(request, body);
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const field = Object.keys(body)[0];
    if (field === undefined) return;
    throw new KeywayError('invalid_field', { param: field, detail: NO_BODY }, { param: field });
  }
  throw new KeywayError('invalid_request', { detail: `This endpoint takes no request body: ${NO_BODY_HINT}.` });
}

const NO_BODY_HINT = 'send none (or {})';
const NO_BODY = `unknown field: this endpoint takes no request body; ${NO_BODY_HINT}`;

/** Requests whose body a peek (peekBodyText) found still incomplete at the deadline. */
const expiredBodies = new WeakSet<Request>();

/**
 * The body as text within the limits (readJson's first half, for a caller that keeps the text): every
 * request body Keyway reads, inference and management alike, comes through here, so the size limit and
 * the body deadline hold for all. A client that closes the connection before sending the whole body
 * gets 499 `client_closed`: its own doing, not a Keyway failure. One that has not sent it all within
 * `bodyTimeoutMs` gets 408 `request_timeout`.
 */
export async function readBodyText(request: Request, limits: BodyLimits): Promise<string> {
  const maxBytes = limits.maxBodyBytes;
  const timeoutMs = limits.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw new KeywayError('request_too_large', { size: declared, limit: maxBytes });
  if (expiredBodies.has(request)) throw bodyTimeout(timeoutMs);
  try {
    const reading = declared !== null || request.body === null ? request.bytes() : readLimited(request.body, maxBytes);
    return decodeUtf8(await withinBodyDeadline(reading, timeoutMs));
  } catch (error) {
    if (!(error instanceof KeywayError) && (request.signal.aborted || (error instanceof Error && error.name === 'AbortError'))) {
      throw new KeywayError('client_closed', { detail: 'The client closed the connection before sending the whole request body.' }, { cause: error });
    }
    throw error;
  }
}

/**
 * One decoder for every body: `fatal`, so a byte sequence that is not UTF-8 is refused instead of
 * stored or forwarded as U+FFFD (a team's name once was). The check is part of the decode itself: one
 * pass over the bytes as read, as `request.text()` makes, with no second scan and no extra copy.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new KeywayError('invalid_json', { detail: 'the body is not valid UTF-8' });
  }
}

/**
 * The body as text without consuming it, for a route that looks at it before the lifecycle reads it
 * (the Responses API's preload of stored responses), within the same limits. A peek that misses the
 * deadline marks the request, so the read that follows answers 408 at once, and the lifecycle books it,
 * instead of waiting out a second deadline.
 */
export async function peekBodyText(request: Request, limits: BodyLimits): Promise<string> {
  try {
    // bun-types declares clone() with the DOM's Request; at run time it is Bun's, like the original.
    return await readBodyText(request.clone() as Request, limits);
  } catch (error) {
    if (error instanceof KeywayError && error.code === 'request_timeout') expiredBodies.add(request);
    throw error;
  }
}

/**
 * The answer to a body that missed its deadline ends the connection: the rest of the body may still be
 * on its way, and read as the next request it would be garbage; closing is also what frees the
 * connection the slow client held. Bun closes it once the answer is written.
 */
const CLOSE_CONNECTION: Readonly<Record<string, string>> = { connection: 'close' };

/**
 * The read, or 408 `request_timeout` once `timeoutMs` have passed without it: one entry in the shared
 * deadline ticker (core/lifecycle/deadlines.ts), never a timer of its own, so a body that arrives at
 * once costs a Set insertion and removal. Bun gives no way to cancel the read itself (`request.bytes()`
 * holds the stream); it settles when the connection closes after the 408, and that outcome is dropped.
 */
function withinBodyDeadline(reading: Promise<Uint8Array>, timeoutMs: number): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const deadline = scheduleDeadline(timeoutMs, () => reject(bodyTimeout(timeoutMs)));
    reading.then(
      (bytes) => {
        deadline.cancel();
        resolve(bytes);
      },
      (error: unknown) => {
        deadline.cancel();
        reject(error);
      },
    );
  });
}

function bodyTimeout(timeoutMs: number): KeywayError {
  return new KeywayError('request_timeout', { limit: timeoutMs }, { headers: CLOSE_CONNECTION });
}

/** Parses a body read by readBodyText: within the size and depth limits, and not empty (readJson's second half). */
export function parseJsonText(text: string, maxBytes: number, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): unknown {
  if (text.length > maxBytes) throw new KeywayError('request_too_large', { size: text.length, limit: maxBytes });
  if (text.length === 0) throw new KeywayError('invalid_json', { detail: 'the body is empty' });
  if (exceedsJsonDepth(text, maxDepth)) throw new KeywayError('invalid_json', { detail: `nested deeper than ${maxDepth} levels` });
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new KeywayError('invalid_json', { detail: (error as Error).message.slice(0, 200) });
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * Whether JSON text nests arrays and objects more than `maxDepth` levels deep, in one pass that
 * counts brackets outside strings (a string is skipped with `indexOf`, honouring escaped quotes).
 * It does not validate: malformed text that is shallow enough is left for JSON.parse to reject.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  const length = text.length;
  // Nesting past maxDepth takes more than maxDepth characters.
  if (length <= maxDepth) return false;
  let depth = 0;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code === QUOTE) {
      let end = text.indexOf('"', index + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      // An unterminated string: JSON.parse reports it.
      if (end === -1) return false;
      index = end;
    } else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/** A quote is escaped when an odd number of backslashes precede it. */
function isEscaped(text: string, quote: number): boolean {
  let backslashes = 0;
  for (let index = quote - 1; index >= 0 && text.charCodeAt(index) === BACKSLASH; index--) backslashes++;
  return backslashes % 2 === 1;
}

async function readLimited(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new KeywayError('request_too_large', { size: `more than ${maxBytes}`, limit: maxBytes });
    }
    chunks.push(value);
  }
  // A body that came in one chunk is decoded where it lies.
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

/** JSON path of a TypeBox error (`/providers/0/name`) as the dotted field a client recognises. */
export function fieldName(path: string): string {
  return path
    .split('/')
    .filter((segment) => segment.length > 0)
    .map((segment, position) => (/^\d+$/.test(segment) ? `[${segment}]` : position === 0 ? segment : `.${segment}`))
    .join('');
}

/** Validates a body against a schema; the error names the first wrong field and the rule it broke. */
export function validateBody<Schema extends TSchema>(schema: Schema, body: unknown): Static<Schema> {
  if (Value.Check(schema, body)) return body as Static<Schema>;
  const first = Value.Errors(schema, body).First();
  if (first === undefined) throw new KeywayError('invalid_request', { detail: 'The request body is invalid.' });
  const param = fieldName(first.path) || 'body';
  if (first.value === undefined) throw new KeywayError('missing_field', { param }, { param });
  throw new KeywayError('invalid_field', { param, detail: validationMessage(first) }, { param });
}

/**
 * A schema may say in words what a rule means: `errorMessage` (a string for any failure, or one per
 * keyword: `{ pattern: 'must not contain whitespace' }`), else, for a pattern, its `description`.
 */
interface DescribedSchema {
  errorMessage?: string | Record<string, string>;
  description?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  type?: string;
  const?: unknown;
  anyOf?: DescribedSchema[];
  properties?: Record<string, unknown>;
}

const KEYWORD_BY_ERROR: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.StringPattern]: 'pattern',
  [ValueErrorType.StringFormat]: 'format',
  [ValueErrorType.StringMinLength]: 'minLength',
  [ValueErrorType.StringMaxLength]: 'maxLength',
  [ValueErrorType.NumberMinimum]: 'minimum',
  [ValueErrorType.NumberMaximum]: 'maximum',
  [ValueErrorType.NumberExclusiveMinimum]: 'exclusiveMinimum',
  [ValueErrorType.NumberExclusiveMaximum]: 'exclusiveMaximum',
  [ValueErrorType.IntegerMinimum]: 'minimum',
  [ValueErrorType.IntegerMaximum]: 'maximum',
  [ValueErrorType.IntegerExclusiveMinimum]: 'exclusiveMinimum',
  [ValueErrorType.IntegerExclusiveMaximum]: 'exclusiveMaximum',
  [ValueErrorType.ArrayMinItems]: 'minItems',
  [ValueErrorType.ArrayMaxItems]: 'maxItems',
  [ValueErrorType.Union]: 'anyOf',
  [ValueErrorType.Literal]: 'const',
};

const NUMBER_ERRORS: ReadonlySet<ValueErrorType> = new Set([
  ValueErrorType.Number,
  ValueErrorType.NumberMinimum,
  ValueErrorType.NumberMaximum,
  ValueErrorType.NumberExclusiveMinimum,
  ValueErrorType.NumberExclusiveMaximum,
  ValueErrorType.Integer,
  ValueErrorType.IntegerMinimum,
  ValueErrorType.IntegerMaximum,
  ValueErrorType.IntegerExclusiveMinimum,
  ValueErrorType.IntegerExclusiveMaximum,
]);

/** What a client reads after "Invalid value for '<field>': ": the rule, in words. */
export function validationMessage(error: Pick<ValueError, 'type' | 'schema' | 'message'>): string {
  const schema = error.schema as DescribedSchema;
  const keyword = KEYWORD_BY_ERROR[error.type];
  const custom = schema.errorMessage;
  if (typeof custom === 'string') return custom;
  if (custom !== undefined && keyword !== undefined && typeof custom[keyword] === 'string') return custom[keyword];
  if (NUMBER_ERRORS.has(error.type)) return numberRule(schema);
  switch (error.type) {
    case ValueErrorType.StringPattern:
      return schema.description ?? `must match the pattern ${schema.pattern}`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters long`;
    case ValueErrorType.ArrayMinItems:
      return `must hold at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`;
    case ValueErrorType.ArrayMaxItems:
      return `must hold at most ${schema.maxItems} item${schema.maxItems === 1 ? '' : 's'}`;
    case ValueErrorType.Literal:
      return `expected ${String(schema.const)}`;
    case ValueErrorType.Union:
      return unionRule(schema);
    case ValueErrorType.ObjectAdditionalProperties:
      // A typo silently dropped or stored is a setting not applied: say what the object does take.
      return `unknown field; known fields: ${Object.keys(schema.properties ?? {}).join(', ')}`;
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
}

/** `must be a number from 0 to 2`, `must be an integer of at least 1`, `must be a number greater than 0 and at most 1000`. */
function numberRule(schema: DescribedSchema): string {
  return `must be ${numberPhrase(schema)}`;
}

/** The number a schema takes, as a phrase: `a number from 0 to 2`, `an integer of at least 1`. */
function numberPhrase(schema: DescribedSchema): string {
  const kind = schema.type === 'integer' ? 'an integer' : 'a number';
  const lower =
    schema.exclusiveMinimum !== undefined ? `greater than ${schema.exclusiveMinimum}` : schema.minimum !== undefined ? `at least ${schema.minimum}` : undefined;
  const upper =
    schema.exclusiveMaximum !== undefined ? `less than ${schema.exclusiveMaximum}` : schema.maximum !== undefined ? `at most ${schema.maximum}` : undefined;
  if (schema.minimum !== undefined && schema.maximum !== undefined) return `${kind} from ${schema.minimum} to ${schema.maximum}`;
  if (lower !== undefined && upper !== undefined) return `${kind} ${lower} and ${upper}`;
  if (lower !== undefined || upper !== undefined) return `${kind} ${lower ?? upper}`;
  return kind;
}

const TYPE_PHRASES: Readonly<Record<string, string>> = { string: 'a string', boolean: 'true or false', object: 'an object', array: 'an array', null: 'null' };

/** One member of a union, as a phrase of `must be …`. */
function memberPhrase(member: DescribedSchema): string {
  if (member.const !== undefined) return String(member.const);
  if (member.type === 'integer' || member.type === 'number') return numberPhrase(member);
  return TYPE_PHRASES[member.type ?? ''] ?? 'another value';
}

function hasBounds(schema: DescribedSchema): boolean {
  return [schema.minimum, schema.maximum, schema.exclusiveMinimum, schema.exclusiveMaximum].some((bound) => bound !== undefined);
}

/**
 * `expected one of: admin, developer, viewer` for literals; `expected string or null` otherwise. A
 * bounded number among the members is given with its bounds (`must be an integer from 1 to 3650, or
 * null`): "expected integer or null" for a 0 would hide the rule the 0 broke.
 */
function unionRule(schema: DescribedSchema): string {
  const members = schema.anyOf ?? [];
  if (members.length > 0 && members.every((member) => member.const !== undefined)) {
    return `expected one of: ${members.map((member) => String(member.const)).join(', ')}`;
  }
  if (members.some((member) => (member.type === 'integer' || member.type === 'number') && hasBounds(member))) {
    return `must be ${[...new Set(members.map(memberPhrase))].join(', or ')}`;
  }
  const names = members.map((member) => (member.const !== undefined ? String(member.const) : (member.type ?? 'value')));
  return `expected ${[...new Set(names)].join(' or ')}`;
}
