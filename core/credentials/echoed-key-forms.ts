// The forms of one known key that an upstream refusing it may quote back, beyond the key itself: a
// short start cut with a mask ("Incorrect API key provided: pplx-ab…", shorter than the masked forms
// masked-keys.ts looks for in every text), and base64 of the key or of the credential that carried it
// (`Bearer <key>`, Basic auth's `<user>:<key>`), standard or URL-safe, padded or not, whole or cut.
// Only a failed attempt's error is searched, for that attempt's key (core/lifecycle/attempt-failures.ts):
// an answer that succeeded never pays for this.

import { REDACTED } from './secret-shapes.ts';

/** Keys shorter than this are not looked for (as with redaction by value). */
const MINIMUM_KEY_LENGTH = 8;
/** How many of the key's first characters, then a mask, are a truncated echo of it. */
const MINIMUM_START = 4;
/**
 * How many of the key's characters in a row a base64 text must spell to be an echo of it: 48 bits, so
 * that ordinary text matches one of a key's windows by chance about once in 10^12 places. An echo cut
 * shorter shows less of the key than that.
 */
const BASE64_WINDOW = 6;
/** Fewer base64 characters cannot spell BASE64_WINDOW bytes at any alignment. */
const SHORTEST_BASE64_RUN = 8;

/** Each base64 and base64url character's six bits; -1 for any other character. */
const SEXTETS: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let index = 0; index < alphabet.length; index++) table[alphabet.charCodeAt(index)] = index;
  for (const [character, sextet] of [
    ['+', 62],
    ['-', 62],
    ['/', 63],
    ['_', 63],
  ] as const)
    table[character.charCodeAt(0)] = sextet;
  return table;
})();

/** `text` with every form of `key` named above replaced by the marker. */
export function redactEchoedKeyForms(text: string, key: string): string {
  if (key.length < MINIMUM_KEY_LENGTH) return text;
  const plain = redactTruncatedStarts(text.replaceAll(key, REDACTED), key);
  return redactBase64Forms(plain, key);
}

/** The mask a provider cuts a key with, at `at`: its length, 0 when none starts there. */
function maskLength(text: string, at: number): number {
  let end = at;
  while (end < text.length) {
    if (text[end] === '*' || text[end] === '…') end++;
    else if (text.startsWith('...', end)) end += 3;
    else break;
  }
  return end - at;
}

/** How many characters after `at` are an end of `key` (a masked form's tail): the whole word, or none. */
function keyEndLength(text: string, at: number, key: string): number {
  let end = at;
  while (end < text.length && /[A-Za-z0-9_-]/.test(text[end] as string)) end++;
  return end > at && key.endsWith(text.slice(at, end)) ? end - at : 0;
}

/**
 * A start of the key, MINIMUM_START characters or more, its family prefix counted, followed by a mask
 * (`…`, `...`, `*`): the start, the mask and an end of the key after it are redacted.
 */
function redactTruncatedStarts(text: string, key: string): string {
  const head = key.slice(0, MINIMUM_START);
  let at = text.indexOf(head);
  if (at === -1) return text;
  let result = '';
  let copied = 0;
  while (at !== -1) {
    let shown = MINIMUM_START;
    while (shown < key.length && text[at + shown] === key[shown]) shown++;
    const mask = maskLength(text, at + shown);
    if (mask === 0) {
      at = text.indexOf(head, at + 1);
      continue;
    }
    const end = at + shown + mask + keyEndLength(text, at + shown + mask, key);
    result += text.slice(copied, at) + REDACTED;
    copied = end;
    at = text.indexOf(head, end);
  }
  return result + text.slice(copied);
}

/**
 * The key's windows of BASE64_WINDOW (six) characters, each as two 24-bit halves: `tails` holds the
 * last three characters of every window (small integers, a cheap first test), `whole` the 48-bit value.
 */
interface KeyWindows {
  tails: Set<number>;
  whole: Set<number>;
}

const HALF = 0x1000000;

function keyWindows(key: string): KeyWindows {
  const windows: KeyWindows = { tails: new Set(), whole: new Set() };
  let head = 0;
  let tail = 0;
  for (let index = 0; index < key.length; index++) {
    head = ((head << 8) | (tail >>> 16)) & 0xffffff;
    tail = ((tail << 8) | (key.charCodeAt(index) & 0xff)) & 0xffffff;
    if (index < BASE64_WINDOW - 1) continue;
    windows.tails.add(tail);
    windows.whole.add(head * HALF + tail);
  }
  return windows;
}

/**
 * Whether the bytes `run`'s characters from `offset` spell hold a window of the key: decoded six bits
 * at a time, the last six bytes rolled along in two integers, so nothing is allocated.
 */
function spellsKeyFrom(run: string, offset: number, windows: KeyWindows): boolean {
  let bits = 0;
  let held = 0;
  let head = 0;
  let tail = 0;
  let decoded = 0;
  for (let index = offset; index < run.length; index++) {
    bits = ((bits << 6) | (SEXTETS[run.charCodeAt(index)] as number)) & 0xfff;
    held += 6;
    if (held < 8) continue;
    held -= 8;
    head = ((head << 8) | (tail >>> 16)) & 0xffffff;
    tail = ((tail << 8) | ((bits >> held) & 0xff)) & 0xffffff;
    decoded++;
    if (decoded >= BASE64_WINDOW && windows.tails.has(tail) && windows.whole.has(head * HALF + tail)) return true;
  }
  return false;
}

function spellsKey(run: string, windows: KeyWindows): boolean {
  // A run can start anywhere in a group of four characters: each start is decoded.
  for (let offset = 0; offset < 4; offset++) if (spellsKeyFrom(run, offset, windows)) return true;
  return false;
}

/** Whether the character at `index` is one of base64's or base64url's (padding aside). */
function isBase64Character(text: string, index: number): boolean {
  const code = text.charCodeAt(index);
  return code < 128 && (SEXTETS[code] as number) >= 0;
}

/**
 * A run of base64 (or base64url) characters that spells BASE64_WINDOW of the key's characters in a row,
 * at any alignment: the key's own encoding, that of `Bearer <key>` or `<user>:<key>`, or one cut short.
 * The whole run goes, with its padding: the rest of it is the same credential. Scanned by hand: a
 * replace with a callback cost ten times as much on an ordinary message.
 */
function redactBase64Forms(text: string, key: string): string {
  let windows: KeyWindows | undefined;
  let result = '';
  let copied = 0;
  let index = 0;
  while (index < text.length) {
    if (!isBase64Character(text, index)) {
      index++;
      continue;
    }
    const start = index;
    while (index < text.length && isBase64Character(text, index)) index++;
    if (index - start < SHORTEST_BASE64_RUN) continue;
    windows ??= keyWindows(key);
    if (!spellsKey(text.slice(start, index), windows)) continue;
    while (text[index] === '=') index++;
    result += text.slice(copied, start) + REDACTED;
    copied = index;
  }
  return copied === 0 ? text : result + text.slice(copied);
}
