// What closes with a team. Other plugins keep rows bound to a team (approvals keep its pending
// requests): they register here, and the team's DELETE closes them in the same call, so its audit
// entry says what it closed. One list per running gateway, keyed by its services object (tests run
// several in one process), as plugins/alerts/raise.ts keeps its raisers.

import type { Services } from '../../core/spec/services.ts';

export interface TeamDeletion {
  teamId: string;
  accountId: string;
  /** The gateway key that deleted the team. */
  deletedBy: string;
  deletedAt: string;
}

/** What a listener closed, merged into the deletion's audit entry: its state before, and after. */
export interface ClosedWithTeam {
  before: Record<string, unknown>;
  after: Record<string, unknown>;
}

export type TeamDeletionListener = (deletion: TeamDeletion) => Promise<ClosedWithTeam | undefined>;

const listeners = new WeakMap<Services, TeamDeletionListener[]>();

export function onTeamDeleted(services: Services, listener: TeamDeletionListener): void {
  listeners.set(services, [...(listeners.get(services) ?? []), listener]);
}

/**
 * Runs every listener for a deleted team; what they closed, or undefined when nothing was. The team
 * is already deleted: a listener that fails is logged, not answered, and its plugin must still treat
 * the deleted team's rows as closed (approvals refuse deciding them).
 */
export async function closeWithTeam(services: Services, deletion: TeamDeletion): Promise<ClosedWithTeam | undefined> {
  let closed: ClosedWithTeam | undefined;
  for (const listener of listeners.get(services) ?? []) {
    try {
      const result = await listener(deletion);
      if (result !== undefined) closed = { before: { ...closed?.before, ...result.before }, after: { ...closed?.after, ...result.after } };
    } catch (error) {
      services.logger.warn(
        { teamId: deletion.teamId, error: error instanceof Error ? error.message : String(error) },
        'closing what a deleted team held failed',
      );
    }
  }
  return closed;
}
