// CSV as RFC 4180 writes it (CRLF line ends, fields with a comma, quote, CR or LF quoted, quotes
// doubled), made safe to open in a spreadsheet: a text cell that a spreadsheet would run as a formula
// (starting with = + - @, tab or CR, or their full-width forms) gets a leading apostrophe, the
// OWASP "CSV injection" advice. Numbers are written as numbers, in plain decimals (0.00000016, never
// JavaScript's 1.6e-7): -0.5 stays a negative number.

import { plainDecimal } from '../../core/catalog/nano-usd.ts';

export type CsvValue = string | number | boolean | null | undefined;

/** = + - @ tab CR, and the full-width = + - @ some spreadsheets also read as formula starts. */
const FORMULA_STARTS = new Set([0x3d, 0x2b, 0x2d, 0x40, 0x09, 0x0d, 0xff1d, 0xff0b, 0xff0d, 0xff20]);
const PLAIN_NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
const NEEDS_QUOTES = /[",\r\n]/;

/** A text cell that cannot run as a formula: negative numbers sent as text stay numbers. */
export function neutralizeFormula(text: string): string {
  // A character-code check first: this runs for every text cell of a million-row export.
  return FORMULA_STARTS.has(text.charCodeAt(0)) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
}

export function csvCell(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? plainDecimal(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const safe = neutralizeFormula(value);
  return NEEDS_QUOTES.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function csvLine(values: readonly CsvValue[]): string {
  let line = '';
  for (let index = 0; index < values.length; index++) {
    if (index > 0) line += ',';
    line += csvCell(values[index]);
  }
  return `${line}\r\n`;
}
