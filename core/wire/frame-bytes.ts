// A stream frame written straight to bytes: the hot frames of a stream (one per text delta) are the
// same text each time but for a number and a JSON string. Building them as a string and passing it
// through TextEncoder walks the whole rope and re-encodes the constant text on every frame; here the
// constant pieces are encoded once (per stream or item) and copied, and only the variable parts are written
// (bench/responses-chunk-ab.ts). The bytes are exactly what TextEncoder.encode gives for the same text.

const textEncoder = new TextEncoder();

/** Text that is not plain printable ASCII, or that JSON must escape: such text takes the general path. */
const NOT_PLAIN = /["\\\u0000-\u001f\u0080-\uffff]/;
const NON_ASCII = /[\u0080-\uffff]/;
/** What JSON.stringify escapes: quotes, backslashes, control characters, surrogates (lone ones are escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Up to this length, copying an ASCII string's characters one by one beats a native encode and copy. */
const CHARACTER_COPY_LIMIT = 64;
/** Up to this length, copying bytes one by one beats the call into a typed array's `set`. */
const BYTE_COPY_LIMIT = 16;

export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

function decimalLength(value: number): number {
  if (value < 10) return 1;
  if (value < 100) return 2;
  if (value < 1000) return 3;
  if (value < 10000) return 4;
  let length = 5;
  for (let rest = Math.floor(value / 100000); rest >= 1; rest = Math.floor(rest / 10)) length++;
  return length;
}

/** Writes a non-negative integer's decimal digits ending before `end`. */
function writeDecimal(target: Uint8Array, end: number, value: number): void {
  let at = end;
  let rest = value;
  // Integer division by `| 0` is several times cheaper than Math.floor, for the values it holds.
  while (rest >= 0x7fffffff) {
    target[--at] = 48 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  do {
    const next = (rest / 10) | 0;
    target[--at] = 48 + rest - next * 10;
    rest = next;
  } while (rest > 0);
}

function copyBytes(target: Uint8Array, source: Uint8Array, at: number): number {
  const length = source.length;
  if (length > BYTE_COPY_LIMIT) target.set(source, at);
  else for (let index = 0; index < length; index++) target[at + index] = source[index] as number;
  return at + length;
}

/**
 * `head`, a non-negative integer in decimal, `middle`, `text` as a JSON string, `tail`: the bytes of
 * `${head}${number}${middle}${JSON.stringify(text)}${tail}`, the pieces given as UTF-8.
 */
export function frameBytes(head: Uint8Array, number: number, middle: Uint8Array, text: string, tail: Uint8Array): Uint8Array {
  const digits = decimalLength(number);
  // Three ways to the JSON string, cheapest first: plain short text quoted as it is; short ASCII text
  // escaped by JSON.stringify (its escapes are ASCII too), both copied character by character; anything
  // else (non-ASCII, long) encoded natively and copied, quotes added here unless JSON.stringify wrote them.
  let escaped: string | undefined;
  let encoded: Uint8Array | undefined;
  let quotes = 2;
  const short = text.length <= CHARACTER_COPY_LIMIT;
  if (!short || NOT_PLAIN.test(text)) {
    if (short && !NON_ASCII.test(text)) escaped = JSON.stringify(text);
    else if (NEEDS_ESCAPE.test(text)) {
      encoded = textEncoder.encode(JSON.stringify(text));
      quotes = 0;
    } else encoded = textEncoder.encode(text);
  }
  const textLength = escaped !== undefined ? escaped.length : encoded !== undefined ? encoded.length + quotes : text.length + 2;
  const frame = new Uint8Array(head.length + digits + middle.length + textLength + tail.length);
  let at = copyBytes(frame, head, 0) + digits;
  writeDecimal(frame, at, number);
  at = copyBytes(frame, middle, at);
  if (escaped !== undefined) at = copyAscii(frame, escaped, at);
  else {
    if (quotes !== 0) frame[at++] = 34;
    if (encoded === undefined) at = copyAscii(frame, text, at);
    else {
      frame.set(encoded, at);
      at += encoded.length;
    }
    if (quotes !== 0) frame[at++] = 34;
  }
  copyBytes(frame, tail, at);
  return frame;
}

function copyAscii(target: Uint8Array, text: string, at: number): number {
  const length = text.length;
  for (let index = 0; index < length; index++) target[at + index] = text.charCodeAt(index);
  return at + length;
}
