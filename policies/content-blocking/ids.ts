// Identifiers that start with two capital letters: IBANs (country length table and the ISO 7064
// mod-97 check) and UK National Insurance numbers (HMRC's prefix rules and an A–D suffix). The
// scanner calls `lettersIdAt` only for a token run that starts with two capitals followed by a digit,
// or that is exactly two capitals (the spaced forms `GB82 WEST …`, `AB 12 34 56 C`, `AB 123456 C`).

import type { DetectorId } from './detectors.ts';
import { isAlphanumeric, isDigit, isSpaceSeparator, isUpper } from './detectors.ts';

/** IBAN lengths by country (the SWIFT IBAN registry). */
export const IBAN_LENGTHS: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SC: 31,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
};

/** The same table indexed by (first letter − A) × 26 + (second letter − A), so a lookup allocates nothing. */
const LENGTH_BY_CODE = new Uint8Array(26 * 26);
for (const [country, length] of Object.entries(IBAN_LENGTHS)) LENGTH_BY_CODE[(country.charCodeAt(0) - 65) * 26 + (country.charCodeAt(1) - 65)] = length;

const ibanChars = new Uint16Array(40);

/** ISO 13616: the BBAN, then the country and check digits, read as one number, is 1 mod 97. */
export function ibanChecksumValid(chars: ArrayLike<number>, length: number): boolean {
  let remainder = 0;
  for (let step = 0; step < length; step++) {
    const code = chars[(step + 4) % length] ?? 0;
    remainder = isDigit(code) ? (remainder * 10 + (code - 48)) % 97 : (remainder * 100 + (code - 55)) % 97;
  }
  return remainder === 1;
}

function ibanAt(text: string, start: number): boolean {
  const expected = LENGTH_BY_CODE[(text.charCodeAt(start) - 65) * 26 + (text.charCodeAt(start + 1) - 65)] ?? 0;
  if (expected === 0 || !isDigit(text.charCodeAt(start + 2)) || !isDigit(text.charCodeAt(start + 3))) return false;
  let count = 0;
  let index = start;
  while (count < expected && index < text.length) {
    const code = text.charCodeAt(index);
    if (isDigit(code) || isUpper(code)) {
      ibanChars[count++] = code;
      index++;
    } else if (count % 4 === 0 && count > 0 && isSpaceSeparator(code))
      index++; // printed in groups of four, spaces of any width
    else break;
  }
  if (count !== expected || (index < text.length && isAlphanumeric(text.charCodeAt(index)))) return false;
  return ibanChecksumValid(ibanChars, count);
}

const NINO_FIRST_FORBIDDEN = 'DFIQUV';
const NINO_SECOND_FORBIDDEN = 'DFIOQUV';
const NINO_PREFIX_FORBIDDEN = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

/**
 * `AB123456C` and the ways it is printed: a space after the prefix and before the suffix, the digits
 * together or in pairs (`AB 12 34 56 C`, `AB 123456 C`, `AB123456 C`). The suffix letter is required
 * (A–D), which keeps plain codes out.
 */
function ninoAt(text: string, start: number): boolean {
  const first = text[start] ?? '';
  const second = text[start + 1] ?? '';
  if (NINO_FIRST_FORBIDDEN.includes(first) || NINO_SECOND_FORBIDDEN.includes(second) || NINO_PREFIX_FORBIDDEN.has(first + second)) return false;
  // Spaces of any width (a no-break space from a PDF or a web page) count as ` `.
  let index = isSpaceSeparator(text.charCodeAt(start + 2)) ? start + 3 : start + 2;
  // The six digits together, or in pairs split by single spaces throughout.
  const pairsSpaced = isSpaceSeparator(text.charCodeAt(index + 2));
  for (let pair = 0; pair < 3; pair++) {
    if (pair > 0 && pairsSpaced) {
      if (!isSpaceSeparator(text.charCodeAt(index))) return false;
      index++;
    }
    if (!isDigit(text.charCodeAt(index)) || !isDigit(text.charCodeAt(index + 1))) return false;
    index += 2;
  }
  if (isSpaceSeparator(text.charCodeAt(index))) index++;
  const suffix = text.charCodeAt(index);
  if (suffix < 65 || suffix > 68) return false;
  return index + 1 >= text.length || !isAlphanumeric(text.charCodeAt(index + 1));
}

export function lettersIdAt(text: string, start: number): DetectorId | undefined {
  if (ibanAt(text, start)) return 'iban';
  if (ninoAt(text, start)) return 'uk_nino';
  return undefined;
}
