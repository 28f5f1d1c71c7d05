// What a secret looks like, for every place that must neither echo nor store one: the shapes of the
// keys Keyway knows (provider keys, its own gateway keys, bearer tokens) and the exact values in play
// (secret-values.ts: decrypted provider keys, the operator key). One list serves the log scrubber,
// every error answer (core/errors.ts) and the client-supplied names a usage row keeps.

import { containsKnownSecret, longestRememberedSecret, redactKnownSecrets } from './secret-values.ts';
import { MAXIMUM_SIDE, redactMaskedForms } from './masked-keys.ts';

export const REDACTED = '[REDACTED]';

// Each shape starts where no name character precedes it: `\b` alone let a shape start after a hyphen,
// so ordinary names (`project-sk-analytics`, a fine-tuned model's `-sk-…` suffix) read as keys.
const SECRET_PATTERNS: readonly RegExp[] = [
  /(?<![A-Za-z0-9_-])(?:sk|pk|rk)-(?:proj-|ant-(?:api\d\d-)?|live-|test-)?[A-Za-z0-9_-]{8,}/g,
  // Perplexity's keys are `pplx-` and letters and digits only; its model ids (`pplx-7b-online`) have hyphens.
  /(?<![A-Za-z0-9_-])pplx-[A-Za-z0-9]{16,}/g,
  /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{20,}/g,
  // Keyway's own keys have a prefix no word holds: found even glued to a word (`Xkw_ak_…`).
  /kw_(?:op|ak|mk)_[A-Za-z0-9_-]{8,}/g,
  // `Bearer` in any case, spelt out so that every pattern shares the same flags (next).
  /\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/=-]{8,}/g,
];

/** All of them as one expression, without `g` (which keeps a position between calls): one pass to test. */
const SECRET_SHAPE = new RegExp(SECRET_PATTERNS.map((pattern) => `(?:${pattern.source})`).join('|'));

/** No pattern matches fewer characters (`sk-` and 8): shorter text is only checked by value. */
const SHORTEST_SHAPE = 11;

/**
 * Replaces anything shaped like a provider or gateway key, every secret value in play, and the masked
 * forms of a client's own key (a provider's "Incorrect API key provided: sk-*****wxyz"), with a marker.
 */
export function redactSecrets(text: string): string {
  let result = redactMaskedForms(redactKnownSecrets(text));
  for (const pattern of SECRET_PATTERNS) result = result.replace(pattern, REDACTED);
  return result;
}

/** A text cut for an answer ends so: the answer shows it was cut. */
const CUT_MARK = '…';
/** The longest a shape or masked form runs that no value covers: a form's start, its run's first stars, its end. */
const LONGEST_FORM = 2 * MAXIMUM_SIDE + 16;
/**
 * How many characters of a redacted text may come from the last `longest` characters of the text it
 * was made from: every redaction puts a 10-character marker in place of one character or more.
 */
const MARKER_GROWTH = REDACTED.length;

/** `text` at most `limit` characters long: cut, with the mark, when longer. */
function cut(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, Math.max(0, limit - CUT_MARK.length))}${CUT_MARK}`;
}

/**
 * `redactSecrets(text)` cut to at most `limit` characters, for error texts of any length (an upstream
 * echoing a body, a client's 180 KB model name): only the start is redacted, so the cost is bounded.
 * Cut first, a key straddling the cut would escape redaction whole and show its start; so the text is
 * cut with a margin past the longest key in play, redacted, and cut again to `limit`. What came from
 * the margin's end (a key cut in two) lies in the redacted text's last `MARKER_GROWTH` × longest
 * characters; when the redacted text is too short for that to be past `limit` (many keys shrank to
 * markers), the whole text is redacted instead.
 */
export function redactedExcerpt(text: string, limit: number): string {
  const longest = Math.max(longestRememberedSecret(), LONGEST_FORM);
  const tail = MARKER_GROWTH * longest;
  if (text.length > limit + 2 * tail) {
    const redacted = redactSecrets(text.slice(0, limit + 2 * tail));
    if (redacted.length >= limit + tail) return cut(redacted, limit);
  }
  return cut(redactSecrets(text), limit);
}

/**
 * Whether `text` holds a secret, by value or by shape. Cheap enough for every request (about 100 ns
 * on a model name): a rolling hash per character for the values, then one expression for the shapes.
 */
export function looksLikeSecret(text: string): boolean {
  if (containsKnownSecret(text)) return true;
  if (text.length < SHORTEST_SHAPE) return false;
  return SECRET_SHAPE.test(text);
}

/** A client-supplied name as it may be stored or shown: the marker in place of one that holds a secret. */
export function shownValue(text: string): string {
  return looksLikeSecret(text) ? REDACTED : text;
}

/** Scrubs the string values of an error's extras or a log object, `depth` levels deep (names are the code's), each cut to `limit` when given; other values pass unchanged. */
export function redactStrings(value: unknown, depth: number, limit?: number): unknown {
  if (typeof value === 'string') return limit === undefined ? redactSecrets(value) : redactedExcerpt(value, limit);
  if (depth === 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactStrings(item, depth - 1, limit));
  if (value instanceof Error) return { name: value.name, message: redactSecrets(value.message) };
  const scrubbed: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) scrubbed[key] = redactStrings(item, depth - 1, limit);
  return scrubbed;
}

/** Client keys shorter than this are not looked for: too likely to occur in ordinary text. */
const MINIMUM_CLIENT_KEY_LENGTH = 8;

/**
 * The request's own provider key (`X-Provider-Key`), when it sent one long enough to look for. A key
 * of no known shape is known by value only from the key-resolve stage on (client-keys.ts), and the
 * request id, the project tag and X-Team-ID are read before that: so they are compared with it here.
 */
export function clientKeyOf(headers: Headers): string | undefined {
  const key = headers.get('x-provider-key')?.trim();
  return key === undefined || key.length < MINIMUM_CLIENT_KEY_LENGTH ? undefined : key;
}

/** Whether `text` (a header value Keyway keeps or echoes) holds the request's own X-Provider-Key: one `includes` when sent. */
export function holdsClientKey(text: string, headers: Headers): boolean {
  const key = clientKeyOf(headers);
  return key !== undefined && text.includes(key);
}

/** `text` with the request's own X-Provider-Key replaced by the marker. */
export function redactClientKey(text: string, headers: Headers): string {
  const key = clientKeyOf(headers);
  return key === undefined ? text : text.replaceAll(key, REDACTED);
}
