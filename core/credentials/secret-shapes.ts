// What a secret looks like, for every place that must neither echo nor store one: the shapes of the
// keys Keyway knows (provider keys, its own gateway keys, bearer tokens) and the exact values in play
// (secret-values.ts: decrypted provider keys, the operator key). One list serves the log scrubber,
// every error answer (core/errors.ts) and the client-supplied names a usage row keeps.

import { containsKnownSecret, redactKnownSecrets } from './secret-values.ts';
import { redactMaskedForms } from './masked-keys.ts';

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

/** Scrubs the string values of an error's extras or a log object, `depth` levels deep (names are the code's); other values pass unchanged. */
export function redactStrings(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth === 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactStrings(item, depth - 1));
  if (value instanceof Error) return { name: value.name, message: redactSecrets(value.message) };
  const scrubbed: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) scrubbed[key] = redactStrings(item, depth - 1);
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
