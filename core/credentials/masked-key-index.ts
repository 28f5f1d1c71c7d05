// The provider keys whose masked forms are looked for (masked-keys.ts), indexed by the starts and ends
// they may show, so that a mask run in a text costs a few map lookups per character around it whatever
// the number of keys held: scanning every held key at every run let one long model name of ellipses
// hold a worker for 25 s with a thousand stored keys. Exact strings, not buckets to scan: many keys
// share their first characters (`AIzaSy`, `sk-ant-api03-`), so a bucket by them would hold them all.

import { keyFamily } from './secrets.ts';

/**
 * How many of a key's characters past its family prefix, and of its last ones, are indexed: a longer
 * start or end shown is found by its first (last) this many. About 3 KB a key held.
 */
export const INDEXED_SIDE = 16;
/** Below this many told characters on each side, a form is only one when the start and end are of the same key. */
export const MINIMUM_SHOWN = 4;

interface HeldKey {
  readonly listed: string | undefined;
  holders: number;
}

const keys = new Map<string, HeldKey>();
/** `key[0, p)` for p up to its family prefix and INDEXED_SIDE characters past it → how many keys start so, times 64, plus its told characters (p less the prefix). */
const starts = new Map<string, number>();
/** `key[length - s, length)` for s up to INDEXED_SIDE → how many keys end so. */
const ends = new Map<string, number>();
/** A short start and a short end of one key (told + shown ≥ MINIMUM_SHOWN, each below it), joined by NUL → how many keys. */
const pairs = new Map<string, number>();
const COUNT_UNIT = 64;
/** A key's first INDEXED_SIDE told characters (with its family prefix), and its last INDEXED_SIDE → the keys: a longer start or end shown is checked against them whole. */
const longStarts = new Map<string, Set<string>>();
const longEnds = new Map<string, Set<string>>();

/**
 * Keyway's own masked forms of the stored keys held (their listings' `masked_key`) → how many keys
 * have each. They are left as they are where they stand alone: the listing, the audit trail and
 * Keyway's own messages show them on purpose.
 */
const listedForms = new Map<string, ListedForm>();
/** Where the listed forms' mask runs start (their family prefixes' lengths) → how many forms: a run is looked up at each. */
const listedRunOffsets = new Map<number, number>();

interface ListedForm {
  holders: number;
  runAt: number;
  runLength: number;
}

const LISTED_RUN = /[*•●·]{3,}|\*{2,}|\.{3,}|…+/;
/** What follows the run of a listed form: the key's last four, or nothing for a short key (secrets.ts `maskKey`). */
const LISTED_TAILS = [4, 0];

function entries(key: string): { starts: Array<[string, number]>; ends: string[]; pairs: string[] } {
  const family = keyFamily(key).length;
  const result = { starts: [] as Array<[string, number]>, ends: [] as string[], pairs: [] as string[] };
  for (let length = 1; length <= Math.min(key.length - 1, family + INDEXED_SIDE); length++)
    result.starts.push([key.slice(0, length), Math.max(0, length - family)]);
  for (let length = 1; length <= Math.min(key.length - 1, INDEXED_SIDE); length++) result.ends.push(key.slice(-length));
  for (let told = 1; told < MINIMUM_SHOWN; told++) {
    for (let shown = MINIMUM_SHOWN - told; shown < MINIMUM_SHOWN; shown++) result.pairs.push(`${key.slice(0, family + told)}\u0000${key.slice(-shown)}`);
  }
  return result;
}

function count(map: Map<string, number>, text: string, by: number): void {
  const value = (map.get(text) ?? 0) + by;
  if (value > 0) map.set(text, value);
  else map.delete(text);
}

function index(key: string, sign: 1 | -1): void {
  const found = entries(key);
  for (const [text, told] of found.starts) {
    // The told count of the first key to start so stays: keys starting alike share their family prefix.
    const value = (starts.get(text) ?? told) + sign * COUNT_UNIT;
    if (value >= COUNT_UNIT) starts.set(text, value);
    else starts.delete(text);
  }
  for (const text of found.ends) count(ends, text, sign);
  for (const text of found.pairs) count(pairs, text, sign);
  const family = keyFamily(key).length;
  group(longStarts, key.slice(0, family + INDEXED_SIDE), key, sign);
  group(longEnds, key.slice(-INDEXED_SIDE), key, sign);
}

function group(map: Map<string, Set<string>>, text: string, key: string, sign: 1 | -1): void {
  const members = map.get(text);
  if (sign > 0) {
    if (members === undefined) map.set(text, new Set([key]));
    else members.add(key);
    return;
  }
  members?.delete(key);
  if (members?.size === 0) map.delete(text);
}

/** Holds `key` (once more if already held); `listed` is its listing's masked form, left where it stands alone. */
export function holdKey(key: string, listed: string | undefined): void {
  const held = keys.get(key);
  if (held !== undefined) {
    held.holders++;
    return;
  }
  keys.set(key, { listed, holders: 1 });
  index(key, 1);
  if (listed !== undefined) holdListedForm(listed);
}

export function releaseKey(key: string): void {
  const held = keys.get(key);
  if (held === undefined) return;
  if (held.holders > 1) {
    held.holders--;
    return;
  }
  keys.delete(key);
  index(key, -1);
  if (held.listed !== undefined) releaseListedForm(held.listed);
}

function holdListedForm(listed: string): void {
  const form = listedForms.get(listed);
  if (form !== undefined) {
    form.holders++;
    return;
  }
  const run = LISTED_RUN.exec(listed);
  if (run === null) return;
  listedForms.set(listed, { holders: 1, runAt: run.index, runLength: run[0].length });
  listedRunOffsets.set(run.index, (listedRunOffsets.get(run.index) ?? 0) + 1);
}

function releaseListedForm(listed: string): void {
  const form = listedForms.get(listed);
  if (form === undefined) return;
  if (form.holders > 1) {
    form.holders--;
    return;
  }
  listedForms.delete(listed);
  const offsets = listedRunOffsets.get(form.runAt) ?? 1;
  if (offsets > 1) listedRunOffsets.set(form.runAt, offsets - 1);
  else listedRunOffsets.delete(form.runAt);
}

export function heldKeyCount(): number {
  return keys.size;
}

/** How many characters past its family prefix `text` tells of a held key it is the start of; -1 when it starts none. */
export function toldOfStart(text: string): number {
  const value = starts.get(text);
  return value === undefined ? -1 : value % COUNT_UNIT;
}

/** Whether `text` is the end of a held key; past INDEXED_SIDE characters, checked against the keys that end with its last ones. */
export function isKeyEnd(text: string): boolean {
  if (text.length <= INDEXED_SIDE) return ends.has(text);
  for (const key of longEnds.get(text.slice(-INDEXED_SIDE)) ?? []) if (key.length > text.length && key.endsWith(text)) return true;
  return false;
}

/**
 * Whether `text`, past a family prefix of `family` characters, is a start of a held key telling more
 * than INDEXED_SIDE characters: checked against the keys that start with its first ones.
 */
export function isLongKeyStart(text: string, family: number): boolean {
  for (const key of longStarts.get(text.slice(0, family + INDEXED_SIDE)) ?? []) if (key.length > text.length && key.startsWith(text)) return true;
  return false;
}

/** Whether `start` (a few characters past a family prefix) and `end` (a few last ones) are of one held key. */
export function isKeyPair(start: string, end: string): boolean {
  return pairs.has(`${start}\u0000${end}`);
}

/** A letter, a digit, `-` or `_`: a character that, next to a listed form, makes it part of a longer one. */
export function isWordCharacter(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 45 || code === 95;
}

/**
 * Whether the run [start, end) of `text` is the run of a held key's listed form standing alone: a
 * word character before it or after it makes it part of a longer form (`AIzaSyCANARY…gk3E` holds the
 * listed `…gk3E`), which is key material. One lookup per family prefix length among the listed forms.
 */
export function inListedForm(text: string, start: number, end: number): boolean {
  for (const runAt of listedRunOffsets.keys()) {
    const from = start - runAt;
    if (from < 0 || (from > 0 && isWordCharacter(text.charCodeAt(from - 1)))) continue;
    for (const tail of LISTED_TAILS) {
      const to = end + tail;
      if (to > text.length || (to < text.length && isWordCharacter(text.charCodeAt(to)))) continue;
      const form = listedForms.get(text.slice(from, to));
      if (form !== undefined && form.runLength === end - start) return true;
    }
  }
  return false;
}
