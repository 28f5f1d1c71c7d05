// The masked forms of the provider keys in play: a client's own key (`X-Provider-Key`) while its
// request runs, and every stored key while it is decrypted (key-vault.ts). A provider that refuses a
// key may quote it masked: OpenAI writes the first 3 and last 4 characters around a run of stars
// (`sk-*****wxyz`), others only the end (`****wxyz`) or an ellipsis (`sk-ab...wxyz`). The key itself
// is redacted by value (secret-values.ts), which misses these forms; here they are found from the key:
// a run of mask characters with a start of the key before it and an end of the key after it. Error
// answers reach callers who must never see key material (a team member), so no form of it passes.

import { keyFamily } from './secrets.ts';

/** A run of mask characters as providers write them: three or more stars or bullets, an ellipsis. */
const MASK_RUN = /(?:\*|•|●|·){3,}|\.{3,}|…/g;
/** The marker every redaction leaves (secret-shapes.ts `REDACTED`, which imports this module). */
const REDACTED = '[REDACTED]';
/** Keys shorter than this are not looked for (as with redaction by value). */
const MINIMUM_KEY_LENGTH = 8;
/**
 * How many of the key's characters, around the run, make a masked form: fewer could be chance. Its
 * family prefix (`sk-proj-`) is not counted: every key of the kind starts so, and it tells nothing.
 */
const MINIMUM_SHOWN = 4;
/** No provider shows more of a key than this on either side of the mask. */
const MAXIMUM_SIDE = 64;

interface Held {
  holders: number;
  familyLength: number;
  listed: string | undefined;
}

/** Key → how many holders (requests in flight, the key vault) hold it. */
const keys = new Map<string, Held>();
/**
 * Keyway's own masked forms of the stored keys held (their listings' `masked_key`) → how many keys
 * have each. They are left as they are: the listing, the audit trail and Keyway's own messages show
 * them on purpose, and one must stay even when another key of the same last four makes it a match.
 */
const listedForms = new Map<string, ListedForm>();

interface ListedForm {
  holders: number;
  /** Where its mask run starts, and how long the run is. */
  runAt: number;
  runLength: number;
}

/** Starts redacting the masked forms of `key`, but for `listed`; pairs with `forgetMaskedForms`. */
export function rememberMaskedForms(key: string, listed?: string): void {
  if (key.length < MINIMUM_KEY_LENGTH) return;
  const held = keys.get(key);
  if (held !== undefined) {
    held.holders++;
    return;
  }
  keys.set(key, { holders: 1, familyLength: keyFamily(key).length, listed });
  if (listed !== undefined) rememberListedForm(listed);
}

function rememberListedForm(listed: string): void {
  const form = listedForms.get(listed);
  if (form !== undefined) {
    form.holders++;
    return;
  }
  const run = new RegExp(MASK_RUN.source).exec(listed);
  if (run !== null) listedForms.set(listed, { holders: 1, runAt: run.index, runLength: run[0].length });
}

export function forgetMaskedForms(key: string): void {
  const held = keys.get(key);
  if (held === undefined) return;
  if (held.holders > 1) {
    held.holders--;
    return;
  }
  keys.delete(key);
  const form = held.listed === undefined ? undefined : listedForms.get(held.listed);
  if (form === undefined) return;
  if (form.holders > 1) form.holders--;
  else listedForms.delete(held.listed as string);
}

/** Whether the run [start, end) of `text` is the run of a held key's listed form, written out around it. */
function inListedForm(text: string, start: number, end: number): boolean {
  if (listedForms.size === 0) return false;
  for (const [listed, form] of listedForms) {
    if (form.runLength === end - start && holdsAt(text, start - form.runAt, listed, 0, listed.length)) return true;
  }
  return false;
}

/** Whether `text` holds `key`'s characters [keyFrom, keyFrom + length) at `at`; no copy of either. */
function holdsAt(text: string, at: number, key: string, keyFrom: number, length: number): boolean {
  for (let index = 0; index < length; index++) if (text.charCodeAt(at + index) !== key.charCodeAt(keyFrom + index)) return false;
  return true;
}

/** How many characters before `end` in `text` are the start of `key` (at most all but one of them). */
function shownPrefix(text: string, end: number, key: string): number {
  for (let length = Math.min(end, key.length - 1, MAXIMUM_SIDE); length > 0; length--) {
    if (holdsAt(text, end - length, key, 0, length)) return length;
  }
  return 0;
}

/** How many characters from `start` in `text` are the end of `key`. */
function shownSuffix(text: string, start: number, key: string): number {
  for (let length = Math.min(text.length - start, key.length - 1, MAXIMUM_SIDE); length > 0; length--) {
    if (holdsAt(text, start, key, key.length - length, length)) return length;
  }
  return 0;
}

/**
 * The widest span of a masked form of a remembered key around the run [start, end), if there is one.
 * The widest, not the first found: another held key with the same last four would match the run and
 * its end only, and leave the start of the quoted key in front of the marker (`ope[REDACTED]`).
 */
function maskedFormAround(text: string, start: number, end: number): { from: number; to: number } | undefined {
  let widest: { from: number; to: number } | undefined;
  for (const [key, held] of keys) {
    const prefix = shownPrefix(text, start, key);
    const prefixTold = Math.max(0, prefix - held.familyLength);
    if (prefixTold === 0 && text.length - end < MINIMUM_SHOWN) continue;
    const suffix = shownSuffix(text, end, key);
    if (prefixTold + suffix < MINIMUM_SHOWN) continue;
    if (widest === undefined || prefix + suffix > widest.to - widest.from - (end - start)) widest = { from: start - prefix, to: end + suffix };
  }
  return widest;
}

/** Replaces every masked form of a remembered key in `text` with the marker. */
export function redactMaskedForms(text: string): string {
  if (keys.size === 0) return text;
  let result = '';
  let copied = 0;
  for (const run of text.matchAll(MASK_RUN)) {
    const start = run.index;
    if (start < copied || inListedForm(text, start, start + run[0].length)) continue;
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
