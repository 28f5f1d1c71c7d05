// How a store looks booked usage keys up for a journal replay: per account, by creation time, through
// the (account_id, created_at) index both dialects keep for analytics and the export. Keys sorted by
// account and time and cut into chunks make each statement one short range of that index; the request
// ids are then matched on the rows of that range. The replay reads those rows from the table, where an
// index of its own would be paid by every usage row written (a replay happens after a crash or a
// failed write; the writes happen on every request).

import type { UsageKey } from './store.ts';

export interface UsageKeyWindow {
  accountId: string;
  /** The earliest and the latest creation time in the chunk (ISO 8601, both inclusive). */
  from: string;
  to: string;
  /** The chunk's request ids, each once. */
  requestIds: string[];
}

const KEYS_PER_WINDOW = 500;

const byAccountThenTime = (left: UsageKey, right: UsageKey): number =>
  left.accountId < right.accountId
    ? -1
    : left.accountId > right.accountId
      ? 1
      : left.createdAt < right.createdAt
        ? -1
        : left.createdAt > right.createdAt
          ? 1
          : 0;

export function usageKeyWindows(keys: readonly UsageKey[], size = KEYS_PER_WINDOW): UsageKeyWindow[] {
  const sorted = [...keys].sort(byAccountThenTime);
  const windows: UsageKeyWindow[] = [];
  let start = 0;
  while (start < sorted.length) {
    const accountId = (sorted[start] as UsageKey).accountId;
    let end = start + 1;
    while (end < sorted.length && end - start < size && (sorted[end] as UsageKey).accountId === accountId) end++;
    const chunk = sorted.slice(start, end);
    windows.push({
      accountId,
      from: (chunk[0] as UsageKey).createdAt,
      to: (chunk[chunk.length - 1] as UsageKey).createdAt,
      requestIds: [...new Set(chunk.map((key) => key.requestId))],
    });
    start = end;
  }
  return windows;
}
