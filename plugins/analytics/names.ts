// The names reports show beside ids: teams (from the teams plugin's snapshot section, deleted teams
// included) and gateway keys (revoked ones included). Spend stays on the books after a team is deleted
// or a key revoked, and finance must still be able to tell whose it was (docs/analytics.md, "Names and numbers").

import type { Services } from '../../core/spec/services.ts';
import type { TeamsSection } from '../teams/types.ts';

/** The name of each team of the account, live or deleted, by id. Empty without the teams plugin. */
export function teamNamesOf(services: Services, accountId: string): Map<string, string> {
  const section = services.snapshot.section<TeamsSection>('teams');
  const names = new Map<string, string>();
  // Deleted first, so a live team's name wins should an id ever appear in both.
  for (const team of section?.deletedById.values() ?? []) if (team.accountId === accountId) names.set(team.id, team.name);
  for (const team of section?.byId.values() ?? []) if (team.accountId === accountId) names.set(team.id, team.name);
  return names;
}

export interface KeyName {
  name: string;
  /** Null once the key is revoked: a revoked key is shown by name only. */
  maskedKey: string | null;
}

/** Every gateway key of the account, revoked ones included (their rows stay, marked revoked_at). Never a key or its hash. */
export async function keyNamesOf(services: Services, accountId: string): Promise<Map<string, KeyName>> {
  const rows = await services.store.query('SELECT id, name, masked_key, revoked_at FROM gateway_keys WHERE account_id = ?', [accountId]);
  return new Map(
    rows.map((row) => [
      String(row.id),
      { name: String(row.name), maskedKey: row.revoked_at === null || row.revoked_at === undefined ? String(row.masked_key) : null },
    ]),
  );
}
