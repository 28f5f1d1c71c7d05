// A team's PATCH is a read, a merge and a write, on any worker or instance at once. Written as a whole
// without a condition, the last PATCH undid every merge that landed between its read and its write: QA
// (qa-teams M1) had 6 PATCHes at once, each capping one provider, all answered 200 and 5 of 30 caps
// lost over 5 rounds. The write now holds only if the row is still the one merged into.

import type { Store } from '../../core/spec/store.ts';
import type { TeamRow } from './records.ts';

/** How many times a PATCH merges into a team that keeps changing before it answers 409. */
export const PATCH_ATTEMPTS = 20;

/**
 * A new `updated_at`, always after the one read: the write's condition compares it, so two writes in
 * the same millisecond must not leave the same value.
 */
export function laterThan(updatedAt: string, now: number): string {
  const read = Date.parse(updatedAt);
  return new Date(Number.isNaN(read) || now > read ? now : read + 1).toISOString();
}

/** Writes the patched team if the stored row is still `read` (every write of a team moves its `updated_at`); whether it was. */
export async function storeTeamIfUnchanged(store: Store, read: TeamRow, updated: TeamRow): Promise<boolean> {
  const rows = await store.query(
    'UPDATE teams SET name = ?, permissions = ?, updated_at = ? WHERE id = ? AND account_id = ? AND deleted_at IS NULL AND updated_at = ? RETURNING id',
    [updated.name, JSON.stringify(updated.permissions), updated.updatedAt, read.id, read.accountId, read.updatedAt],
  );
  return rows.length > 0;
}
