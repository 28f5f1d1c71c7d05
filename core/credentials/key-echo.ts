// The provider key of one upstream call, looked for by value in what the call answered before it
// reaches the client (QA15 F3). Successful answers are forwarded byte for byte, so a key an upstream
// echoes in a 200 (`"system_fingerprint":"fp_<key>"`) would reach the client: shape redaction cannot
// see it behind `fp_`, and errors are the only answers toDescriptor scrubs. The one value looked for
// is the exact key Keyway sent (the decrypted stored key, or the client's own X-Provider-Key), so an
// answer without it costs one native search for one character, with no copy.

import { REDACTED } from './secret-shapes.ts';

/** Shorter keys are not looked for: too likely to occur in ordinary text (as secret-values.ts). */
const MINIMUM_KEY_LENGTH = 8;

/**
 * Characters from the least to the most frequent in answers (English text inside JSON). The key is
 * found through its rarest character: a native search for one character is about four times faster
 * than one for the whole key (bench/micro/key-echo.ts), and that character seldom occurs elsewhere.
 */
const BY_RARITY = 'QZXJKVWYBGPFUMHCDLRNIOSATEqzxjkvbywgpf9876543210mucdhlrnisoate';
const RARITY = new Uint8Array(128).fill(BY_RARITY.length);
for (let rank = 0; rank < BY_RARITY.length; rank++) RARITY[BY_RARITY.charCodeAt(rank)] = rank;

/**
 * Places of the rare character compared with the key before the search for the whole key takes over:
 * an answer full of that character (base64) costs a bounded number of comparisons, then one native search.
 */
const ANCHOR_TRIES = 8;

const textEncoder = new TextEncoder();
const REDACTED_BYTES = textEncoder.encode(REDACTED);
/** Buffer's native search for a byte sequence, called on a plain Uint8Array (no Buffer view per call). */
const indexOfBytes = Buffer.prototype.indexOf as (this: Uint8Array, value: Uint8Array, byteOffset?: number) => number;
const NOTHING = new Uint8Array(0);

/** The position of the rarest of `length` character or byte codes (the first among equals); codes past ASCII count as common. */
function rarestPosition(length: number, codeAt: (index: number) => number): number {
  let best = 0;
  let bestRank = Number.MAX_SAFE_INTEGER;
  for (let index = 0; index < length; index++) {
    const code = codeAt(index);
    const rank = code < 128 ? (RARITY[code] as number) : BY_RARITY.length;
    if (rank < bestRank) {
      best = index;
      bestRank = rank;
    }
  }
  return best;
}

interface KeyBytes {
  key: Uint8Array;
  /** The rarest byte and where it is in the key. */
  anchorAt: number;
  anchor: number;
  /** 1 for the bytes found in the key before its last: a chunk ending on any other byte ends no start of the key. */
  inStart: Uint8Array;
}

/** One key, ready to be looked for in text and in UTF-8 bytes. */
export class KeySearch {
  private readonly anchorAt: number;
  private readonly anchor: string;
  private bytesForm: KeyBytes | undefined;

  constructor(readonly key: string) {
    this.anchorAt = rarestPosition(key.length, (index) => key.charCodeAt(index));
    this.anchor = key.charAt(this.anchorAt);
  }

  /** Where the key starts in `text`, or -1. */
  indexIn(text: string): number {
    const { key, anchor, anchorAt } = this;
    let tries = 0;
    for (let found = text.indexOf(anchor, anchorAt); found !== -1; found = text.indexOf(anchor, found + 1)) {
      if (text.startsWith(key, found - anchorAt)) return found - anchorAt;
      // Every start up to this one has been ruled out.
      if (++tries === ANCHOR_TRIES) return text.indexOf(key, found - anchorAt + 1);
    }
    return -1;
  }

  /** `text` with every occurrence of the key replaced by the marker; the same string when it holds none. */
  redact(text: string): string {
    return this.indexIn(text) === -1 ? text : text.replaceAll(this.key, REDACTED);
  }

  /** The key as UTF-8, for streams: made at the first stream answered with this key. */
  get bytes(): KeyBytes {
    if (this.bytesForm === undefined) {
      const key = textEncoder.encode(this.key);
      const anchorAt = rarestPosition(key.length, (index) => key[index] as number);
      const inStart = new Uint8Array(256);
      for (let index = 0; index < key.length - 1; index++) inStart[key[index] as number] = 1;
      this.bytesForm = { key, anchorAt, anchor: key[anchorAt] as number, inStart };
    }
    return this.bytesForm;
  }

  /** Where the key starts in `bytes` at `from` or after, or -1. */
  indexInBytes(bytes: Uint8Array, from = 0): number {
    const { key, anchor, anchorAt } = this.bytes;
    let tries = 0;
    for (let found = bytes.indexOf(anchor, from + anchorAt); found !== -1; found = bytes.indexOf(anchor, found + 1)) {
      const start = found - anchorAt;
      if (start + key.length > bytes.length) return -1;
      let index = 0;
      while (index < key.length && bytes[start + index] === key[index]) index++;
      if (index === key.length) return start;
      if (++tries === ANCHOR_TRIES) return indexOfBytes.call(bytes, key, start + 1);
    }
    return -1;
  }
}

/** The search for a key, none when it is too short to look for. */
export function keySearch(key: string | undefined): KeySearch | undefined {
  return key !== undefined && key.length >= MINIMUM_KEY_LENGTH ? new KeySearch(key) : undefined;
}

const searches = new WeakMap<object, KeySearch | null>();

/**
 * The search for a call's key, made once per credential object: the key vault keeps a decrypted key's
 * credential for many requests, so its rarest character is found once. Keyed by the object, never the
 * key, and gone with it.
 */
export function keySearchOf(credential: { apiKey: string }): KeySearch | undefined {
  let search = searches.get(credential);
  if (search === undefined) {
    search = keySearch(credential.apiKey) ?? null;
    searches.set(credential, search);
  }
  return search ?? undefined;
}

function concatenated(pieces: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const piece of pieces) length += piece.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}

/**
 * The check over a stream's bytes, chunk by chunk. A key cut across two chunks is caught by holding
 * back the end of a chunk while it could be the start of the key, and reading it again in front of
 * the next one. Only such an end is held: an SSE frame ends with a blank line, which no key starts
 * with, so an ordinary stream is never delayed; what is held goes out with the next chunk or at the end.
 */
export class StreamKeyFilter {
  private held: Uint8Array | undefined;

  constructor(private readonly search: KeySearch) {}

  /** The bytes of `chunk` (after any held back before it) that may go out now. */
  chunk(chunk: Uint8Array): Uint8Array {
    let bytes = chunk;
    if (this.held !== undefined) {
      bytes = concatenated([this.held, chunk]);
      this.held = undefined;
    }
    const found = this.search.indexInBytes(bytes);
    if (found !== -1) bytes = this.redacted(bytes, found);
    const hold = this.startOfKeyAtEnd(bytes);
    if (hold === 0) return bytes;
    this.held = bytes.slice(bytes.length - hold);
    return bytes.subarray(0, bytes.length - hold);
  }

  /** What is still held when the stream ends: it was not the key. */
  flush(): Uint8Array {
    const held = this.held ?? NOTHING;
    this.held = undefined;
    return held;
  }

  /** The length of the longest end of `bytes` that is a start of the key (shorter than the key). */
  private startOfKeyAtEnd(bytes: Uint8Array): number {
    const length = bytes.length;
    const { key, inStart } = this.search.bytes;
    if (length === 0 || inStart[bytes[length - 1] as number] === 0) return 0;
    for (let size = Math.min(key.length - 1, length); size > 0; size--) {
      let matches = true;
      const from = length - size;
      for (let index = 0; index < size && matches; index++) matches = bytes[from + index] === key[index];
      if (matches) return size;
    }
    return 0;
  }

  private redacted(bytes: Uint8Array, first: number): Uint8Array {
    const length = this.search.bytes.key.length;
    const pieces: Uint8Array[] = [];
    let from = 0;
    for (let found = first; found !== -1; found = this.search.indexInBytes(bytes, from)) {
      pieces.push(bytes.subarray(from, found), REDACTED_BYTES);
      from = found + length;
    }
    pieces.push(bytes.subarray(from));
    return concatenated(pieces);
  }
}
