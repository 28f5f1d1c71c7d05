// The masked forms of the provider keys in play: a client's own key (`X-Provider-Key`) while its
// request runs, and every stored key while it is decrypted (key-vault.ts). A provider that refuses a
// key may quote it masked: OpenAI writes the first 3 and last 4 characters around a run of stars
// (`sk-*****wxyz`), others only the end (`****wxyz`), an ellipsis (`sk-ab...wxyz`), `#` or `x` runs,
// or names the start or end alone ("starting with sk-proj-abcdefgh"). The key itself is redacted by
// value (secret-values.ts), which misses these forms; here they are found from the key. Error answers
// reach callers who must never see key material (a team member), so no form of it passes.
//
// The cost is bounded whatever the number of keys held (masked-key-index.ts): a run with no key
// character next to it costs nothing more, any other a few map lookups per character around it.

import {
  heldKeyCount,
  holdKey,
  INDEXED_SIDE,
  inListedForm,
  isKeyEnd,
  isKeyPair,
  isLongKeyStart,
  MINIMUM_SHOWN,
  releaseKey,
  toldOfStart,
} from './masked-key-index.ts';
import { familyShape } from './secrets.ts';

/**
 * A run of mask characters as providers write them: two or more stars, three or more bullets, dots or
 * `#`, ellipses, and four or more `x` (or `X`) between key characters, since words hold shorter ones.
 */
const MASK_RUN = /[*•●·]{3,}|\*{2,}|\.{3,}|…+|#{3,}|(?<=[A-Za-z0-9_-])(?:x{4,}|X{4,})(?=[A-Za-z0-9_-])/g;
/** The marker every redaction leaves (secret-shapes.ts `REDACTED`, which imports this module). */
const REDACTED = '[REDACTED]';
/** Keys shorter than this are not looked for (as with redaction by value). */
const MINIMUM_KEY_LENGTH = 8;
/**
 * How many of a key's first characters (after its family prefix) or last characters, standing as a
 * word of their own, are key material without a mask run ("starting with sk-proj-abcdefgh"): eight
 * are 48 bits of a random key, which no ordinary word matches by chance. A start or end that reads
 * as a word (`rejected`, `Deadline`, `INVALID_ARG`: no digit, no capital inside lowercase) counts
 * from twice that: a key made of words (`rejected-cohere-key`) must not take the word out of prose,
 * and a random key's eight characters read so about once in 300 keys.
 */
export const MINIMUM_SHOWN_ALONE = 8;
export const MINIMUM_WORDLIKE_SHOWN_ALONE = 16;
/** A digit, or a capital after a lowercase letter: what random key characters hold and words do not. */
const KEYLIKE = /\d|[a-z][A-Z]|[A-Z]{2}[a-z]/;
/** No provider shows more of a key than this on either side of the mask. */
export const MAXIMUM_SIDE = 64;
/** A start or end of a key standing as a word: letters, digits, `-` and `_`, the characters of every provider's keys. */
const KEY_WORD = new RegExp(`[A-Za-z0-9_-]{${MINIMUM_SHOWN_ALONE},}`, 'g');

/** Map lookups made so far: the work texts cost, which tests and the bench read (one addition per lookup). */
let work = 0;

export function maskedFormWork(): number {
  return work;
}

/** Starts redacting the masked forms of `key`, but for `listed` standing alone; pairs with `forgetMaskedForms`. */
export function rememberMaskedForms(key: string, listed?: string): void {
  if (key.length >= MINIMUM_KEY_LENGTH) holdKey(key, listed);
}

export function forgetMaskedForms(key: string): void {
  releaseKey(key);
}

export function rememberedMaskedFormCount(): number {
  return heldKeyCount();
}

/** A character a key may hold (visible ASCII, key-material.ts) that is no star or `#`. */
function isKeyCharacter(code: number): boolean {
  return code >= 0x21 && code <= 0x7e && code !== 0x2a && code !== 0x23;
}

/**
 * How many characters past its family prefix `shown` tells of the held key it is the start of, -1 when
 * none. Past the indexed length, it is checked against the keys that start with its first characters.
 */
function toldOf(shown: string): number {
  work++;
  const told = toldOfStart(shown);
  if (told >= 0 || shown.length <= INDEXED_SIDE) return told;
  for (const family of new Set([0, familyShape(shown).length])) {
    if (shown.length <= family + INDEXED_SIDE) continue;
    work++;
    if (isLongKeyStart(shown, family)) return shown.length - family;
  }
  return -1;
}

/** Whether `shown` is the end of a held key. */
function isEndOf(shown: string): boolean {
  work++;
  return isKeyEnd(shown);
}

/** How many key characters lie before `end` (backwards) or from `start` (forwards), at most MAXIMUM_SIDE and not past `limit`. */
function keyCharactersBefore(text: string, end: number, limit: number): number {
  let count = 0;
  while (count < MAXIMUM_SIDE && end - count > limit && isKeyCharacter(text.charCodeAt(end - count - 1))) count++;
  return count;
}

function keyCharactersFrom(text: string, start: number, limit: number): number {
  let count = 0;
  while (count < MAXIMUM_SIDE && start + count < limit && isKeyCharacter(text.charCodeAt(start + count))) count++;
  return count;
}

interface Run {
  start: number;
  end: number;
  /** Key characters before and after it, up to the runs next to it. */
  before: number;
  after: number;
}

/**
 * The span of a masked form of a held key around `run`, if there is one: at least MINIMUM_SHOWN told
 * characters of a key's start before it, or of a key's end after it, or fewer on each side of one
 * key. The widest start and end shown are taken, so no start of the quoted key is left in front of
 * the marker when another held key shares its end (`ope[REDACTED]`).
 */
function maskedFormAround(text: string, run: Run): { from: number; to: number } | undefined {
  const { start, end, before, after } = run;
  let prefix = 0;
  let told = -1;
  const shortStarts: Array<[number, number]> = [];
  for (let length = before; length > 0; length--) {
    const shownTold = toldOf(text.slice(start - length, start));
    if (shownTold < 0) continue;
    if (prefix === 0) [prefix, told] = [length, shownTold];
    if (shownTold > 0 && shownTold < MINIMUM_SHOWN) shortStarts.push([length, shownTold]);
  }
  let suffix = 0;
  const shortEnds: number[] = [];
  for (let length = after; length > 0; length--) {
    if (!isEndOf(text.slice(end, end + length))) continue;
    if (suffix === 0) suffix = length;
    if (length < MINIMUM_SHOWN) shortEnds.push(length);
  }
  const oneKey = (length: number, shownTold: number) =>
    shortEnds.some((shown) => {
      if (shownTold + shown < MINIMUM_SHOWN) return false;
      work++;
      return isKeyPair(text.slice(start - length, start), text.slice(end, end + shown));
    });
  const form = told >= MINIMUM_SHOWN || suffix >= MINIMUM_SHOWN || shortStarts.some(([length, shownTold]) => oneKey(length, shownTold));
  return form ? { from: start - prefix, to: end + suffix } : undefined;
}

/** The mask runs of `text` with a key character next to them, each with the key characters up to its neighbours. */
function runsOf(text: string): Run[] {
  const matches = [...text.matchAll(MASK_RUN)];
  const runs: Run[] = [];
  for (let index = 0; index < matches.length; index++) {
    const match = matches[index] as RegExpExecArray;
    const start = match.index;
    const end = start + match[0].length;
    const previousEnd = index === 0 ? 0 : (matches[index - 1] as RegExpExecArray).index + (matches[index - 1] as RegExpExecArray)[0].length;
    const next = matches[index + 1];
    const before = keyCharactersBefore(text, start, previousEnd);
    const after = keyCharactersFrom(text, end, next === undefined ? text.length : next.index);
    work++;
    if (before > 0 || after > 0) runs.push({ start, end, before, after });
  }
  return runs;
}

/** Replaces every masked form of a held key in `text` with the marker. */
function redactMaskRuns(text: string): string {
  let result = '';
  let copied = 0;
  for (const run of runsOf(text)) {
    if (run.start < copied || inListedForm(text, run.start, run.end)) continue;
    const span = maskedFormAround(text, run);
    if (span === undefined) continue;
    // A start of the key that reaches into the form just replaced is already gone.
    result += `${text.slice(copied, Math.max(span.from, copied))}${REDACTED}`;
    copied = span.to;
  }
  return copied === 0 ? text : result + text.slice(copied);
}

/** Whether `word` is the end of a held key, or its start past the family prefix, long enough to be key material (minimumAlone). */
function isKeyStartOrEnd(word: string): boolean {
  if (isEndOf(word) && word.length >= minimumAlone(word)) return true;
  const told = toldOf(word);
  return told >= MINIMUM_SHOWN_ALONE && told >= minimumAlone(word.slice(word.length - told));
}

function minimumAlone(shown: string): number {
  return KEYLIKE.test(shown) ? MINIMUM_SHOWN_ALONE : MINIMUM_WORDLIKE_SHOWN_ALONE;
}

/** Replaces every masked form of a held key in `text`, and every start or end of one standing as a word, with the marker. */
export function redactMaskedForms(text: string): string {
  if (heldKeyCount() === 0) return text;
  return redactMaskRuns(text).replace(KEY_WORD, (word) => (isKeyStartOrEnd(word) ? REDACTED : word));
}
