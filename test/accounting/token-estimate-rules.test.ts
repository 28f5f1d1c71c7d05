// The estimator reads a 64 KB table of character kinds (core/accounting/token-estimate.ts); this
// checks it against the rules as the file's header states them, written out plainly here, on
// generated text of every kind the rules tell apart.

import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { estimateTextTokens } from '../../core/accounting/token-estimate.ts';

const isLetter = (code: number): boolean => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
const isDigit = (code: number): boolean => code >= 48 && code <= 57;
const isWhitespace = (code: number): boolean => code === 32 || code === 10 || code === 9 || code === 13;

/** The header's rules, one comparison at a time, in quarter tokens. */
function byTheRules(text: string): number {
  let quarters = 0;
  let index = 0;
  while (index < text.length) {
    const code = text.charCodeAt(index);
    const sameKind = isLetter(code) ? isLetter : isDigit(code) ? isDigit : isWhitespace(code) ? isWhitespace : undefined;
    if (sameKind === undefined) {
      if (code < 0x80) quarters += 4;
      else if (code >= 0x400 && code < 0x530) quarters += 3;
      else if (code < 0x800 || (code >= 0xd800 && code <= 0xdfff)) quarters += 6;
      else quarters += 5;
      index++;
      continue;
    }
    let end = index + 1;
    while (end < text.length && sameKind(text.charCodeAt(end))) end++;
    let run = end - index;
    if (sameKind === isWhitespace) {
      if (end < text.length && text.charCodeAt(end - 1) === 32 && !isDigit(text.charCodeAt(end))) run--;
      quarters += Math.ceil(run / 4) * 4;
    } else {
      quarters += Math.ceil(run / 3) * 4;
    }
    index = end;
  }
  return Math.ceil(quarters / 4);
}

/** Characters from each class the rules name, the boundaries of each range among them. */
const PIECES = [
  'a',
  'Z',
  'word',
  '0',
  '42',
  '1234567',
  ' ',
  '  ',
  '\n',
  '\t',
  '\r\n',
  '.',
  '(',
  '@',
  '[',
  '`',
  '{',
  '/',
  ':',
  '\u007f',
  'é',
  'ß',
  '\u0400',
  'Ж',
  '\u052f',
  '\u0530',
  '\u07ff',
  '\u0800',
  '中',
  'カ',
  '한',
  '\ud7ff',
  '😀',
  '\ud800',
  '\udfff',
  '\ue000',
  '\uffff',
];

describe('estimateTextTokens follows its stated rules', () => {
  test('on text built from every class of character and their range boundaries', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...PIECES), { maxLength: 60 }), (pieces) => {
        const text = pieces.join('');
        expect(estimateTextTokens(text)).toBe(byTheRules(text));
      }),
      { numRuns: 2000 },
    );
  });

  test('on arbitrary UTF-16 text, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) => {
        expect(estimateTextTokens(text)).toBe(byTheRules(text));
      }),
      { numRuns: 2000 },
    );
  });
});
