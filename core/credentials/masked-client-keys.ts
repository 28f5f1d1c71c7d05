// The masked forms of a client's own provider key (`X-Provider-Key`) while its request runs. A
// provider that refuses a key may quote it masked: OpenAI writes the first 3 and last 4 characters
// around a run of stars (`sk-*****wxyz`), others only the end (`****wxyz`) or an ellipsis
// (`sk-ab...wxyz`). The key itself is redacted by value (secret-values.ts), which misses these forms;
// here they are found from the key: a run of mask characters with a start of the key before it and an
// end of the key after it. The docs promise that no error answer quotes a key a client sent.

/** A run of mask characters as providers write them: three or more stars or bullets, an ellipsis. */
const MASK_RUN = /(?:\*|•|●|·){3,}|\.{3,}|…/g;
/** The marker every redaction leaves (secret-shapes.ts `REDACTED`, which imports this module). */
const REDACTED = '[REDACTED]';
/** Keys shorter than this are not looked for (as with redaction by value). */
const MINIMUM_KEY_LENGTH = 8;
/** How many of the key's characters, around the run, make a masked form: fewer could be chance. */
const MINIMUM_SHOWN = 4;
/** No provider shows more of a key than this on either side of the mask. */
const MAXIMUM_SIDE = 64;

/** Key → how many requests in flight hold it. */
const keys = new Map<string, number>();

/** Starts redacting the masked forms of `key`; pairs with `forgetMaskedForms`. */
export function rememberMaskedForms(key: string): void {
  if (key.length < MINIMUM_KEY_LENGTH) return;
  keys.set(key, (keys.get(key) ?? 0) + 1);
}

export function forgetMaskedForms(key: string): void {
  const holders = keys.get(key);
  if (holders === undefined) return;
  if (holders > 1) keys.set(key, holders - 1);
  else keys.delete(key);
}

/** How many characters before `end` in `text` are the start of `key` (at most all but one of them). */
function shownPrefix(text: string, end: number, key: string): number {
  for (let length = Math.min(end, key.length - 1, MAXIMUM_SIDE); length > 0; length--) {
    if (text.startsWith(key.slice(0, length), end - length)) return length;
  }
  return 0;
}

/** How many characters from `start` in `text` are the end of `key`. */
function shownSuffix(text: string, start: number, key: string): number {
  for (let length = Math.min(text.length - start, key.length - 1, MAXIMUM_SIDE); length > 0; length--) {
    if (text.startsWith(key.slice(key.length - length), start)) return length;
  }
  return 0;
}

/** The span of a masked form of a remembered key around the run [start, end), if there is one. */
function maskedFormAround(text: string, start: number, end: number): { from: number; to: number } | undefined {
  for (const key of keys.keys()) {
    const prefix = shownPrefix(text, start, key);
    const suffix = shownSuffix(text, end, key);
    if (prefix + suffix >= MINIMUM_SHOWN) return { from: start - prefix, to: end + suffix };
  }
  return undefined;
}

/** Replaces every masked form of a remembered client key in `text` with the marker. */
export function redactMaskedForms(text: string): string {
  if (keys.size === 0) return text;
  let result = '';
  let copied = 0;
  for (const run of text.matchAll(MASK_RUN)) {
    const start = run.index;
    if (start < copied) continue;
    const span = maskedFormAround(text, start, start + run[0].length);
    if (span === undefined) continue;
    // A start of the key that reaches into the form just replaced is already gone.
    result += `${text.slice(copied, Math.max(span.from, copied))}${REDACTED}`;
    copied = span.to;
  }
  return copied === 0 ? text : result + text.slice(copied);
}

export function rememberedMaskedFormCount(): number {
  return keys.size;
}
