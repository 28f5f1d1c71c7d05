// Numbers: payment cards, US SSNs, Canadian SINs and Spanish DNIs. The scanner calls `numberAt` once
// per number (a run of digits with single separators of one kind, a space or a dash, Unicode ones
// included: detectors.ts, separatorKind; not glued to letters), so a document full of figures costs
// one pass; only numbers of the right shape reach a checksum.

import type { DetectorId } from './detectors.ts';
import { isAlphanumeric, isDigit, isUpper, SPACE_SEPARATOR, separatorKind } from './detectors.ts';

const MAX_DIGITS = 24;
const MAX_GROUPS = 8;
const digits = new Uint8Array(MAX_DIGITS);
const groups = new Uint8Array(MAX_GROUPS);

/** Where the last number `numberAt` read ended: the scanner resumes number checks after it. */
let numberEnd = 0;

export function lastNumberEnd(): number {
  return numberEnd;
}

export function luhnValid(values: Uint8Array, count: number): boolean {
  let sum = 0;
  for (let position = 0; position < count; position++) {
    let value = values[count - 1 - position] ?? 0;
    if (position % 2 === 1) {
      value *= 2;
      if (value > 9) value -= 9;
    }
    sum += value;
  }
  return sum % 10 === 0;
}

function prefix(count: number): number {
  let value = 0;
  for (let index = 0; index < count; index++) value = value * 10 + (digits[index] ?? 0);
  return value;
}

/** Issuer ranges (IIN) with the lengths their networks issue. */
export function knownCardRange(count: number): boolean {
  const one = digits[0] ?? 0;
  const two = prefix(2);
  const three = prefix(3);
  const four = prefix(4);
  const six = prefix(6);
  if (one === 4) return count === 13 || count === 16 || count === 19; // Visa
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return count === 16; // Mastercard
  if (two === 34 || two === 37) return count === 15; // American Express
  if (four >= 2200 && four <= 2204) return count === 16; // Mir
  if (four >= 3528 && four <= 3589) return count >= 16; // JCB
  if ((three >= 300 && three <= 305) || two === 36 || two === 38 || two === 39) return count >= 14; // Diners Club
  if (four === 6011 || (three >= 644 && three <= 649) || two === 65 || (six >= 622126 && six <= 622925)) return count >= 16; // Discover
  if (two === 62) return count >= 16; // UnionPay
  if (two === 50 || (two >= 56 && two <= 69)) return count >= 13; // Maestro
  return false;
}

/** 4-4-4-4 (the last group 1 to 4 digits), Amex's 4-6-5 and Diners' 4-6-4; or no separator at all. */
function cardGrouping(groupCount: number): boolean {
  if (groupCount === 1) return true;
  if (groupCount === 3 && groups[0] === 4 && groups[1] === 6 && (groups[2] === 5 || groups[2] === 4)) return true;
  for (let index = 0; index < groupCount - 1; index++) if (groups[index] !== 4) return false;
  const last = groups[groupCount - 1] ?? 0;
  return last >= 1 && last <= 4;
}

/** SSA rules: area not 000, 666 or 900–999; group not 00; serial not 0000; nor the advertised samples. */
export function ssnValid(area: number, group: number, serial: number): boolean {
  if (area === 0 || area === 666 || area >= 900 || group === 0 || serial === 0) return false;
  if (area === 78 && group === 5 && serial === 1120) return false; // the Woolworth wallet card
  if (area === 123 && group === 45 && serial === 6789) return false;
  return true;
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';

/**
 * Whether the letter at `at` (upper or lower case; upper only when `upperOnly`), standing alone, is
 * the check letter of the 8 digits just read: their number mod 23.
 */
function dniLetterAt(text: string, at: number, upperOnly: boolean): boolean {
  const code = text.charCodeAt(at);
  const letter = isUpper(code) ? code : !upperOnly && code >= 97 && code <= 122 ? code - 32 : 0;
  if (letter === 0 || (at + 1 < text.length && isAlphanumeric(text.charCodeAt(at + 1)))) return false;
  return DNI_LETTERS.charCodeAt(prefix(8) % 23) === letter;
}

/**
 * The sensitive number starting at `start` (a digit with no letter or digit before it), if any.
 * Sets `numberEnd`.
 */
export function numberAt(text: string, start: number): DetectorId | undefined {
  const length = text.length;
  // Most numbers in text are short and stand alone (years, prices, counts): leave them at once.
  let short = start;
  while (short < length && short - start < 8 && isDigit(text.charCodeAt(short))) short++;
  if (short - start < 8) {
    if (!(separatorKind(text.charCodeAt(short)) !== 0 && isDigit(text.charCodeAt(short + 1)))) {
      numberEnd = short;
      return undefined;
    }
  }
  let count = 0;
  let groupCount = 0;
  let separator = 0;
  // A Unicode space between groups of three is how French and SI text writes thousands (`123 456 789`).
  let unicodeSpace = false;
  let index = start;
  for (;;) {
    const groupStart = index;
    while (index < length && isDigit(text.charCodeAt(index))) {
      if (count < MAX_DIGITS) digits[count] = text.charCodeAt(index) - 48;
      count++;
      index++;
    }
    if (groupCount < MAX_GROUPS) groups[groupCount] = index - groupStart > 255 ? 255 : index - groupStart;
    groupCount++;
    const next = text.charCodeAt(index);
    const kind = separatorKind(next);
    if (kind !== 0 && (separator === 0 || separator === kind) && isDigit(text.charCodeAt(index + 1))) {
      separator = kind;
      if (next !== 32 && kind === SPACE_SEPARATOR) unicodeSpace = true;
      index++;
      continue;
    }
    break;
  }
  numberEnd = index;
  if (count > MAX_DIGITS || groupCount > MAX_GROUPS) return undefined;
  const after = index < length ? text.charCodeAt(index) : 32;
  const eightDigits = count === 8 && groupCount === 1;
  if (isAlphanumeric(after)) {
    // 8 digits and a letter: a Spanish DNI, its letter the number mod 23 (`12345678Z`, `12345678z`).
    return eightDigits && dniLetterAt(text, index, false) ? 'es_dni' : undefined;
  }
  // Part of a decimal figure (1234.5678, 3,14159…) or a version: not an identifier.
  if ((after === 46 || after === 44) && isDigit(text.charCodeAt(index + 1))) return undefined;
  const before = start > 0 ? text.charCodeAt(start - 1) : 32;
  if ((before === 46 || before === 44) && start > 1 && isDigit(text.charCodeAt(start - 2))) return undefined;
  // As DNIs are printed too: `12345678-Z`, `12345678 Z`. After a space only a capital counts: a
  // lower-case letter there is mostly the word "a" or a unit.
  const afterKind = separatorKind(after);
  if (eightDigits && afterKind !== 0 && dniLetterAt(text, index + 1, afterKind === SPACE_SEPARATOR)) return 'es_dni';

  if (groupCount === 3 && separator !== 0) {
    if (groups[0] === 3 && groups[1] === 2 && groups[2] === 4 && ssnValid(prefix(3), (digits[3] ?? 0) * 10 + (digits[4] ?? 0), prefix(9) % 10000))
      return 'us_ssn';
    // A SIN: 3-3-3, Luhn-valid, never starting with 0 or 8; not with Unicode spaces, which group thousands.
    if (groups[0] === 3 && groups[1] === 3 && groups[2] === 3 && !unicodeSpace && digits[0] !== 0 && digits[0] !== 8 && luhnValid(digits, 9)) return 'ca_sin';
  }
  if (count >= 13 && count <= 19 && cardGrouping(groupCount) && knownCardRange(count) && luhnValid(digits, count)) return 'payment_card';
  return undefined;
}
