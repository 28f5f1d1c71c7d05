// Money as every message shows it (alerts, errors): exact to the nano-dollar, small thresholds and
// spends keep their digits, a nonzero amount is never shown as zero, no exponent ever; details keep
// the booked nano-dollars.

import { describe, expect, test } from 'bun:test';
import { formatUsd } from '../../core/catalog/nano-usd.ts';
import { nanoUsd } from '../../plugins/alerts/money.ts';

describe('formatUsd', () => {
  test.each([
    [100.42, '$100.42'],
    [100, '$100.00'],
    [1, '$1.00'],
    [1234.5, '$1234.50'],
    [0.5, '$0.50'],
    [0.123456, '$0.123456'],
    [99.99982, '$99.99982'],
    [0.1 + 0.2, '$0.30'],
    [1e-7, '$0.0000001'],
    [1.6e-7, '$0.00000016'],
    [1e21, '$1000000000000000000000.00'],
    [0.01, '$0.01'],
    [0.0004055, '$0.0004055'],
    [0.000043, '$0.000043'],
    [0.00002, '$0.00002'],
    [0.00001, '$0.00001'],
    [0.000000001, '$0.000000001'],
    [1.5e-12, '$0.0000000000015'],
    [0.99999, '$0.99999'],
    [0, '$0.00'],
    [-0.0000021, '-$0.0000021'],
    [-12.345, '-$12.345'],
  ])('%p reads %p', (value, shown) => {
    expect(formatUsd(value)).toBe(shown);
  });

  test('a spend and the smaller threshold it crossed never read alike below a dollar', () => {
    // QA12: "reached $0.0000 … above the alert threshold of $0.0000".
    expect(formatUsd(0.000043)).not.toBe(formatUsd(0.00002));
    expect(formatUsd(0.0000201)).not.toBe(formatUsd(0.00002));
    for (let exponent = -15; exponent < 0; exponent++) expect(formatUsd(3 * 10 ** exponent)).not.toMatch(/^\$0\.0*$/);
  });

  test('a budget left just under its limit does not read as the limit', () => {
    expect(formatUsd(99.99982)).not.toBe(formatUsd(100));
  });

  test('never an exponent, from a nano-dollar to a trillion', () => {
    for (let exponent = -12; exponent <= 24; exponent++) expect(formatUsd(1.6 * 10 ** exponent)).toMatch(/^\$\d+\.\d+$/);
  });
});

describe('nanoUsd', () => {
  test('keeps what was booked, to the nano-dollar', () => {
    expect(nanoUsd(0.0004055)).toBe(0.0004055);
    expect(nanoUsd(0.000000123456)).toBe(0.000000123);
    expect(nanoUsd(0.1 + 0.2)).toBe(0.3);
  });
});
