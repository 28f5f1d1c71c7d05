// The CSV writer on its own: RFC 4180 quoting and the spreadsheet-formula rule, cell by cell.

import { describe, expect, test } from 'bun:test';
import { csvCell, csvLine, neutralizeFormula } from '../../plugins/analytics/csv.ts';
import { parseCsv } from './csv-reader.ts';

describe('csvCell', () => {
  test('quotes a field with a comma, a quote, CR or LF, doubling quotes', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('plain text')).toBe('plain text');
  });

  test('prefixes an apostrophe to text starting with = + - @ tab CR or their full-width forms', () => {
    for (const text of ['=1+1', '+1+1', '-1+1', '@SUM(A1)', '\t=1', '\r=1', '＝1', '＋1', '－1', '＠x']) expect(neutralizeFormula(text)).toBe(`'${text}`);
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
  });

  test('leaves numbers numeric, negative ones included, and empty values empty', () => {
    expect(csvCell(-0.25)).toBe('-0.25');
    expect(csvCell('-5')).toBe('-5');
    expect(csvCell('-1.5e-7')).toBe('-1.5e-7');
    expect(csvCell(0)).toBe('0');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
    expect(csvCell(true)).toBe('true');
  });

  test('a line of awkward cells reads back as written, bar the apostrophes', () => {
    const cells = ['=cmd', 'a,b', 'q"q', 'x\r\ny', '', 'end'];
    expect(parseCsv(csvLine(cells))).toEqual([["'=cmd", 'a,b', 'q"q', 'x\r\ny', '', 'end']]);
  });
});
