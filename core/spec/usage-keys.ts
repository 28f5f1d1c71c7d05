// How a store looks booked usage keys up for a journal replay: by creation time first, then request id,
// the order of the index both dialects keep (usage_request_time). Keys sorted by time and cut into
// chunks make each statement one short range of that index, whatever the request ids look like.

import type { UsageKey } from './store.ts';

export interface UsageKeyWindow {
  /** The earliest and the latest creation time in the chunk (ISO 8601, both inclusive). */
  from: string;
  to: string;
  /** The chunk's request ids, each once. */
  requestIds: string[];
}

const KEYS_PER_WINDOW = 500;

export function usageKeyWindows(keys: readonly UsageKey[], size = KEYS_PER_WINDOW): UsageKeyWindow[] {
  const sorted = [...keys].sort((left, right) => (left.createdAt < right.createdAt ? -1 : left.createdAt > right.createdAt ? 1 : 0));
  const windows: UsageKeyWindow[] = [];
  for (let start = 0; start < sorted.length; start += size) {
    const chunk = sorted.slice(start, start + size);
    windows.push({
      from: (chunk[0] as UsageKey).createdAt,
      to: (chunk[chunk.length - 1] as UsageKey).createdAt,
      requestIds: [...new Set(chunk.map((key) => key.requestId))],
    });
  }
  return windows;
}
