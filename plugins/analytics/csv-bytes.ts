// CSV written straight into bytes, for the export's usage rows. Building each page as a string and
// encoding it cost about as much as reading the rows from SQLite: a page is a rope of ~60 pieces a
// row that TextEncoder must flatten, then copy into UTF-8 (bench/export.ts; docs/analytics.md,
// "Export speed"). Here every cell is copied once, into one buffer per page. The cells are exactly
// csvCell's (csv.ts): a test compares the two on random and hostile text.

import { plainDecimal } from '../../core/catalog/nano-usd.ts';
import { neutralizeFormula } from './csv.ts';

const QUOTE = 0x22;
const COMMA = 0x2c;
const CR = 0x0d;
const LF = 0x0a;
const NEEDS_QUOTES = /[",\r\n]/;
const utf8 = new TextEncoder();

/** A growing byte buffer for one page of CSV. */
export class CsvBytes {
  private bytes: Uint8Array;
  private length = 0;

  constructor(capacity = 64 * 1024) {
    this.bytes = new Uint8Array(capacity);
  }

  /** The page written so far; the writer starts a new buffer, so the page is never overwritten. */
  take(): Uint8Array {
    const page = this.bytes.subarray(0, this.length);
    this.bytes = new Uint8Array(Math.max(this.bytes.length, 1024));
    this.length = 0;
    return page;
  }

  /** Text known to need no quoting or neutralizing: Keyway's own timestamps, words and separators. */
  raw(text: string): void {
    this.copy(text, false);
  }

  byte(code: number): void {
    this.reserve(1);
    this.bytes[this.length++] = code;
  }

  /** A finite number in plain decimals (as csvCell writes it); nothing for null. */
  number(value: number | null): void {
    if (value === null || !Number.isFinite(value)) return;
    this.copy(plainDecimal(value), false);
  }

  /** A text cell a client or provider could have chosen: csvCell's quoting and formula guard. */
  cell(value: string | null): void {
    if (value === null) return;
    const safe = neutralizeFormula(value);
    // Copied plainly first; a quote, comma or line break found on the way means the cell is quoted.
    if (!this.copy(safe, true)) this.quoted(safe);
  }

  /** A comma, then the cell. */
  separatedCell(value: string | null): void {
    this.byte(COMMA);
    this.cell(value);
  }

  /**
   * Copies `text` as UTF-8. With `guarded`, a quote, comma or line break stops the copy, leaves the
   * buffer as it was and returns false, so the caller writes the cell quoted instead. ASCII is copied
   * here; the rest of a text with anything else in it goes to the encoder.
   */
  private copy(text: string, guarded: boolean): boolean {
    const count = text.length;
    // UTF-8 takes at most three bytes for each UTF-16 unit.
    this.reserve(count * 3);
    const bytes = this.bytes;
    let at = this.length;
    for (let index = 0; index < count; index++) {
      const code = text.charCodeAt(index);
      if (guarded && (code === QUOTE || code === COMMA || code === CR || code === LF)) return false;
      if (code >= 0x80) {
        const rest = text.slice(index);
        if (guarded && NEEDS_QUOTES.test(rest)) return false;
        at += utf8.encodeInto(rest, bytes.subarray(at)).written;
        break;
      }
      bytes[at++] = code;
    }
    this.length = at;
    return true;
  }

  private quoted(text: string): void {
    this.byte(QUOTE);
    const doubled = text.replaceAll('"', '""');
    this.reserve(doubled.length * 3 + 1);
    this.length += utf8.encodeInto(doubled, this.bytes.subarray(this.length)).written;
    this.byte(QUOTE);
  }

  private reserve(count: number): void {
    if (this.length + count <= this.bytes.length) return;
    const larger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + count));
    larger.set(this.bytes.subarray(0, this.length));
    this.bytes = larger;
  }
}
