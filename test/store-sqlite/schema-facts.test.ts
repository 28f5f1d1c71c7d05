// The schema facts compare a DEFAULT or a partial index's WHERE as each dialect prints it back: these
// must read alike when they mean the same, and differ when they do not.

import { expect, test } from 'bun:test';
import { canonicalDefault, canonicalPredicate } from '../helpers/schema-facts.ts';

test.each([
  ["'{}'::text", "'{}'"],
  ["('{}')", "'{}'"],
  ["'it''s'::text", "'it''s'"],
  ["'-1'::integer", '-1'],
  ['1.0', '1'],
  ['(1.5)', '1.5'],
  ['NULL', null],
  [null, null],
])('default %p reads %p', (raw, canonical) => {
  expect(canonicalDefault(raw)).toBe(canonical);
});

test('defaults that differ stay different', () => {
  expect(canonicalDefault("'0'::text")).not.toBe(canonicalDefault('0'));
  expect(canonicalDefault("'{}'")).not.toBe(canonicalDefault("'[]'"));
  expect(canonicalDefault('0')).not.toBe(canonicalDefault('1'));
});

test('a predicate reads the same from PostgreSQL, SQLite and drizzle, and differs when it does', () => {
  const postgres = canonicalPredicate("(status = 'in_progress'::text)");
  expect(canonicalPredicate(" status = 'in_progress'")).toBe(postgres);
  expect(canonicalPredicate(`"status" = 'in_progress'`)).toBe(postgres);
  expect(canonicalPredicate("status = 'completed'")).not.toBe(postgres);
  expect(canonicalPredicate("status = 'IN_PROGRESS'")).not.toBe(postgres);
  expect(canonicalPredicate('deleted_at IS NOT NULL')).toBe(canonicalPredicate('(deleted_at is not null)'));
});
