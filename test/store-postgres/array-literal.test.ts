// The usage INSERT's array literals (plugins/store-postgres/array-literal.ts): built in JavaScript,
// read back by PostgreSQL as the column's array type, every value as it was, whatever its characters.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { SQL } from 'bun';
import fc from 'fast-check';
import { arrayLiteral } from '../../plugins/store-postgres/array-literal.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

describe('arrayLiteral', () => {
  test('numbers as they are, NULL for null, strings quoted with their quotes and backslashes escaped', () => {
    expect(arrayLiteral([])).toBe('{}');
    expect(arrayLiteral([1, 2.5, 1e-7, null])).toBe('{1,2.5,1e-7,NULL}');
    expect(arrayLiteral(['a', null, 'say "hi"', 'back\\slash', 'NULL', ''])).toBe('{"a",NULL,"say \\"hi\\"","back\\\\slash","NULL",""}');
  });

  test('a number PostgreSQL cannot store is refused, not written as text', () => {
    expect(() => arrayLiteral([Number.NaN])).toThrow(/cannot store/);
    expect(() => arrayLiteral([Number.POSITIVE_INFINITY])).toThrow(/cannot store/);
  });
});

const reachable = await postgresReachable();

describe.skipIf(!reachable)('arrayLiteral read back by PostgreSQL', () => {
  let database: TestDatabase;
  let sql: SQL;
  beforeAll(async () => {
    database = await createTestDatabase();
    sql = new SQL(database.url, { max: 1 });
  });
  afterAll(async () => {
    await sql.close();
    await database.drop();
  });

  test('any text (quotes, backslashes, braces, commas, Unicode, the word NULL) and any null comes back equal', async () => {
    const text = fc.oneof(fc.constant(null), fc.string({ unit: 'grapheme', maxLength: 12 }), fc.constantFrom('NULL', '"', '\\', '{}', ',', ' x ', '\\"'));
    await fc.assert(
      fc.asyncProperty(fc.array(text, { maxLength: 8 }), async (values) => {
        // PostgreSQL text cannot hold NUL.
        const stored = values.map((value) => (value === null ? null : value.replaceAll('\u0000', '')));
        const rows = (await sql.unsafe('SELECT value FROM UNNEST($1::text[]) WITH ORDINALITY AS t(value, position) ORDER BY position', [
          arrayLiteral(stored),
        ])) as Array<{
          value: string | null;
        }>;
        expect(rows.map((row) => row.value)).toEqual(stored);
      }),
      { numRuns: 60 },
    );
  });

  test('integers and floats come back as the same numbers', async () => {
    const integers = [0, 1, -5, 123_456_789_012, Number.MAX_SAFE_INTEGER];
    const floats = [0, 0.1, 1e-7, 12.345678, 1.5e10];
    const [row] = (await sql.unsafe('SELECT $1::int8[] AS integers, $2::float8[] AS floats', [arrayLiteral(integers), arrayLiteral(floats)])) as Array<{
      integers: Array<bigint | number>;
      floats: number[];
    }>;
    expect(row?.integers.map(Number)).toEqual(integers);
    expect(row?.floats).toEqual(floats);
  });
});
