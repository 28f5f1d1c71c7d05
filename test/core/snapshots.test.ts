// Dated snapshots (core/catalog/snapshots.ts): which served names a routed name's price may follow.

import { expect, test } from 'bun:test';
import { isSnapshotOf, snapshotBase } from '../../core/catalog/snapshots.ts';

test('a snapshot is the name with a date after it, in the providers’ three spellings', () => {
  expect(isSnapshotOf('gpt-4o-2024-08-06', 'gpt-4o')).toBe(true);
  expect(isSnapshotOf('claude-sonnet-4-5-20250929', 'claude-sonnet-4-5')).toBe(true);
  expect(isSnapshotOf('gpt-4-0613', 'gpt-4')).toBe(true);
  expect(isSnapshotOf('gpt-4o', 'gpt-4o')).toBe(true);
  // Another model that only shares the prefix is not one.
  for (const other of ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 'gpt-4o-search-preview', 'gpt-4o-2024', 'gpt-4o2024-08-06', 'gpt-4'])
    expect({ other, snapshot: isSnapshotOf(other, 'gpt-4o') }).toEqual({ other, snapshot: false });
});

test('the base of a dated name, none for an undated one', () => {
  expect(snapshotBase('gpt-4o-2024-08-06')).toBe('gpt-4o');
  expect(snapshotBase('claude-sonnet-4-5-20250929')).toBe('claude-sonnet-4-5');
  expect(snapshotBase('gpt-4-0613')).toBe('gpt-4');
  expect(snapshotBase('gpt-4o')).toBeUndefined();
  expect(snapshotBase('2024-08-06')).toBeUndefined();
});
