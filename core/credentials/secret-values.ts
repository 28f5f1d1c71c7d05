// The exact secret values in play in this process: provider keys while they are decrypted, the
// operator key. Pattern redaction catches keys with a known shape (`sk-…`, `AIza…`); keys without
// one (vLLM, Cohere, some Anthropic keys, a self-hosted server's token) are only caught by value.
// Every error text a client sees and every log line is scrubbed of these values.

/** Values shorter than this are too likely to occur in ordinary text to be worth replacing. */
const MINIMUM_LENGTH = 8;
/** Secrets are found by their first characters: one map lookup per position of the scanned text. */
const PREFIX_LENGTH = 6;

/**
 * A position's first characters as a rolling hash, so that a scan computes each position's key from
 * the last one and slices nothing: slicing a prefix at every position cost about a microsecond on a
 * 20-character model name. A hash shared by other text is told apart by comparing the values.
 */
const BASE = 131;
let leadingWeight = 1;
for (let index = 1; index < PREFIX_LENGTH; index++) leadingWeight = Math.imul(leadingWeight, BASE);

function prefixHash(text: string, position: number): number {
  let hash = 0;
  for (let index = position; index < position + PREFIX_LENGTH; index++) hash = (Math.imul(hash, BASE) + text.charCodeAt(index)) | 0;
  return hash;
}

/** The hash at `position + 1` from the hash at `position`. */
function rolledHash(hash: number, text: string, position: number): number {
  return (Math.imul(hash - Math.imul(text.charCodeAt(position), leadingWeight), BASE) + text.charCodeAt(position + PREFIX_LENGTH)) | 0;
}

/** Prefix hash → the values starting so → how many owners hold each. */
const byPrefix = new Map<number, Map<string, number>>();
let count = 0;
/** Length → how many remembered values have it: the longest tells how far a cut text may hold a key cut in two (secret-shapes.ts). */
const lengths = new Map<number, number>();

/** Starts redacting `value` everywhere; pairs with `forgetSecret` (counted, so two owners can hold it). */
export function rememberSecret(value: string | undefined): void {
  if (value === undefined || value.length < MINIMUM_LENGTH) return;
  const prefix = prefixHash(value, 0);
  let values = byPrefix.get(prefix);
  if (values === undefined) byPrefix.set(prefix, (values = new Map()));
  const holders = values.get(value) ?? 0;
  if (holders === 0) {
    count++;
    lengths.set(value.length, (lengths.get(value.length) ?? 0) + 1);
  }
  values.set(value, holders + 1);
}

export function forgetSecret(value: string | undefined): void {
  if (value === undefined || value.length < MINIMUM_LENGTH) return;
  const prefix = prefixHash(value, 0);
  const values = byPrefix.get(prefix);
  const holders = values?.get(value);
  if (values === undefined || holders === undefined) return;
  if (holders > 1) {
    values.set(value, holders - 1);
    return;
  }
  values.delete(value);
  count--;
  const sameLength = lengths.get(value.length) ?? 1;
  if (sameLength > 1) lengths.set(value.length, sameLength - 1);
  else lengths.delete(value.length);
  if (values.size === 0) byPrefix.delete(prefix);
}

/**
 * The longest remembered secret that starts at `position` of `text`, if one does: when one key in
 * play is the start of another, the shorter one must not redact the longer one's start and leave its
 * end in the text.
 */
function secretAt(text: string, position: number, hash: number): string | undefined {
  const values = byPrefix.get(hash);
  if (values === undefined) return undefined;
  let longest: string | undefined;
  for (const value of values.keys()) if ((longest === undefined || value.length > longest.length) && text.startsWith(value, position)) longest = value;
  return longest;
}

/** Replaces every remembered secret in `text` with `[REDACTED]`. O(text length) when none occurs. */
export function redactKnownSecrets(text: string): string {
  if (count === 0 || text.length < MINIMUM_LENGTH) return text;
  let result = text;
  let hash = prefixHash(result, 0);
  for (let position = 0; position + MINIMUM_LENGTH <= result.length; position++) {
    const secret = secretAt(result, position, hash);
    if (secret !== undefined) {
      result = `${result.slice(0, position)}[REDACTED]${result.slice(position + secret.length)}`;
      position += '[REDACTED]'.length - 1;
      if (position + MINIMUM_LENGTH < result.length) hash = prefixHash(result, position + 1);
    } else if (position + MINIMUM_LENGTH < result.length) hash = rolledHash(hash, result, position);
  }
  return result;
}

/** Whether `text` holds a remembered secret anywhere: `redactKnownSecrets` without building a result. */
export function containsKnownSecret(text: string): boolean {
  if (count === 0 || text.length < MINIMUM_LENGTH) return false;
  let hash = prefixHash(text, 0);
  for (let position = 0; position + MINIMUM_LENGTH <= text.length; position++) {
    if (secretAt(text, position, hash) !== undefined) return true;
    if (position + MINIMUM_LENGTH < text.length) hash = rolledHash(hash, text, position);
  }
  return false;
}

export function rememberedSecretCount(): number {
  return count;
}

/** The length of the longest value remembered (0 when none): a few distinct lengths, whatever the number of values. */
export function longestRememberedSecret(): number {
  let longest = 0;
  for (const length of lengths.keys()) if (length > longest) longest = length;
  return longest;
}
