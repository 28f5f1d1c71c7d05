// The grouping behind usage folds (core/spec/usage-fold.ts), on value arrays as a store hands them:
// keys as SQL's coalesce(…, '') would make them, NULL meeting no comparison, and a batch with more
// distinct values in a column than one character can number.

import { expect, test } from 'bun:test';
import { compileUsageFolds, type UsageFoldTable, validateUsageFoldTables } from '../../core/spec/usage-fold.ts';
import { ACCOUNT_DAY_PROVIDER_KEYS } from '../conformance/store.ts';

const COLUMNS = ['account_id', 'created_at', 'provider', 'status', 'cost_usd', 'request_id'];

const BY_PROVIDER: UsageFoldTable = {
  table: 'by_provider',
  keys: ACCOUNT_DAY_PROVIDER_KEYS,
  sums: [
    { column: 'requests', of: 1 },
    { column: 'failed', of: 1, when: [{ column: 'status', compare: '>=', value: 400 }] },
    { column: 'ok', of: 1, when: [{ column: 'status', compare: '<', value: 400 }] },
    { column: 'cost', of: 'cost_usd' },
  ],
};

test('keys take NULL as the empty text and cut the time; sums count and add; a NULL status is neither failed nor ok', () => {
  const fold = compileUsageFolds([BY_PROVIDER], COLUMNS);
  const [result] = fold([
    ['acc', '2026-03-01T10:00:00.000Z', 'openai', 200, 0.1, 'r1'],
    ['acc', '2026-03-01T23:00:00.000Z', 'openai', 500, 0.2, 'r2'],
    ['acc', '2026-03-01T23:30:00.000Z', null, 402, 0, 'r3'],
    ['acc', '2026-03-01T23:40:00.000Z', '', null, null, 'r4'],
    ['acc', '2026-03-02T00:00:00.000Z', 'openai', 200, 0.3, 'r5'],
  ]);
  expect(result?.rows).toEqual([
    ['acc', '2026-03-01', 'openai', 2, 1, 1, 0.1 + 0.2],
    ['acc', '2026-03-01', '', 2, 1, 0, 0],
    ['acc', '2026-03-02', 'openai', 1, 0, 1, 0.3],
  ]);
});

test('a table with a where clause sees only its rows, and several tables share one grouping', () => {
  const failedOnly: UsageFoldTable = {
    ...BY_PROVIDER,
    table: 'failed_only',
    where: [
      { column: 'provider', in: ['openai'] },
      { column: 'status', compare: '<>', value: 200 },
    ],
  };
  const fold = compileUsageFolds([BY_PROVIDER, failedOnly], COLUMNS);
  const [all, failed] = fold([
    ['acc', '2026-03-01T10:00:00.000Z', 'openai', 200, 1, 'r1'],
    ['acc', '2026-03-01T10:00:00.000Z', 'openai', 503, 2, 'r2'],
    ['acc', '2026-03-01T10:00:00.000Z', 'anthropic', 503, 4, 'r3'],
  ]);
  expect(all?.rows.map((row) => row[3])).toEqual([2, 1]);
  expect(failed?.rows).toEqual([['acc', '2026-03-01', 'openai', 1, 1, 0, 2]]);
});

test('more distinct values in a key column than one character can number still group exactly', () => {
  const byRequest: UsageFoldTable = { table: 'by_request', keys: [{ column: 'request_id', from: 'request_id' }], sums: [{ column: 'requests', of: 1 }] };
  const fold = compileUsageFolds([byRequest], COLUMNS);
  const count = 70_000;
  const rows = Array.from({ length: count * 2 }, (_, index) => ['acc', '2026-03-01T10:00:00.000Z', 'openai', 200, 0, `r${index % count}`]);
  const [result] = fold(rows);
  expect(result?.rows.length).toBe(count);
  expect(result?.rows.every((row) => row[1] === 2)).toBe(true);
});

test('a fold that reads a column the store lacks, or names one that is not a plain identifier, is refused', () => {
  expect(() => compileUsageFolds([{ ...BY_PROVIDER, sums: [{ column: 'x', of: 'no_such_column' }] }], COLUMNS)).toThrow('no_such_column');
  expect(() => validateUsageFoldTables([{ ...BY_PROVIDER, table: 'by_provider; DROP TABLE accounts' }])).toThrow('table name');
  expect(() => validateUsageFoldTables([{ ...BY_PROVIDER, keys: [{ column: 'day)', from: 'created_at' }] }])).toThrow('not a plain identifier');
  expect(() => validateUsageFoldTables([BY_PROVIDER])).not.toThrow();
});
