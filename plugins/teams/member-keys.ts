// Which key a member holds is one column, `team_members.gateway_key_id`, that re-issues, removals and a
// team's deletion all change, on any worker or instance at once. Each writes it with a condition the row
// must still meet, and revokes the key the write itself saw, never one read before it: QA (qa-teams H1)
// found 20 re-issues at once leaving 3–4 live keys for one member (each read the same old key, pointed
// the member at its own and revoked only the old one), and those keys outlived the member's removal and
// the team's deletion, then served with no team rule at all.

import { keySettingsOf } from '../../core/spec/key-settings.ts';
import type { Services } from '../../core/spec/services.ts';
import type { Store } from '../../core/spec/store.ts';
import { memberAnswer, type KeyIssuer, type MemberRow, type TeamRow } from './records.ts';
import type { MemberBody } from './schema.ts';

export interface KeySwap {
  memberId: string;
  teamId: string;
  /** The key the re-issue read: the member must still hold it. */
  expectedKeyId: string;
  newKeyId: string;
  settings: Readonly<Record<string, unknown>>;
  issuer: KeyIssuer;
}

/**
 * Points the member at its new key if it still holds the key the re-issue read and is still a member
 * of a live team; whether it did. Of re-issues racing each other exactly one sees its row change.
 */
export async function swapMemberKey(store: Store, swap: KeySwap): Promise<boolean> {
  const rows = await store.query(
    `UPDATE team_members SET gateway_key_id = ?, settings = ?, key_issued_by = ?, key_issued_by_member = ?
      WHERE id = ? AND team_id = ? AND gateway_key_id = ? AND removed_at IS NULL
        AND EXISTS (SELECT 1 FROM teams WHERE teams.id = team_members.team_id AND teams.deleted_at IS NULL)
      RETURNING id`,
    [swap.newKeyId, JSON.stringify(swap.settings), swap.issuer.keyId, swap.issuer.memberId, swap.memberId, swap.teamId, swap.expectedKeyId],
  );
  return rows.length > 0;
}

/** Marks the member removed; the key it held at that moment (a re-issue that won just before included). */
export async function markMemberRemoved(store: Store, memberId: string, teamId: string, now: string): Promise<string | undefined> {
  const rows = await store.query('UPDATE team_members SET removed_at = ? WHERE id = ? AND team_id = ? AND removed_at IS NULL RETURNING gateway_key_id', [
    now,
    memberId,
    teamId,
  ]);
  return rows[0] === undefined ? undefined : String(rows[0].gateway_key_id);
}

/** Marks every member of the team removed; the keys they held at that moment. */
export async function markTeamMembersRemoved(store: Store, teamId: string, now: string): Promise<string[]> {
  const rows = await store.query('UPDATE team_members SET removed_at = ? WHERE team_id = ? AND removed_at IS NULL RETURNING gateway_key_id', [now, teamId]);
  return rows.map((row) => String(row.gateway_key_id));
}

/**
 * Revokes every active key of the team, whoever holds it: a key no member points at any more (left by
 * the race above before it was closed, or issued by a call that lost it to the deletion) included.
 */
export async function revokeTeamKeys(store: Store, teamId: string, accountId: string): Promise<void> {
  const rows = await store.query('SELECT id FROM gateway_keys WHERE team_id = ? AND account_id = ? AND revoked_at IS NULL', [teamId, accountId]);
  for (const row of rows) await store.revokeGatewayKey(String(row.id), accountId);
}

/** Whether the team is live now, read from the store (a snapshot may be older than a deletion). */
export async function teamIsLive(store: Store, teamId: string): Promise<boolean> {
  return (await store.query('SELECT 1 AS live FROM teams WHERE id = ? AND deleted_at IS NULL', [teamId])).length > 0;
}

/** Issues a member's gateway key and records the member; the key itself is returned once. */
export async function issueMember(services: Services, team: TeamRow, member: MemberBody, issuer: KeyIssuer): Promise<Record<string, unknown>> {
  const { credentials, store } = services;
  const byokAccess = member.byok_access ?? member.role !== 'viewer';
  // Stored on the key as POST /v1/keys stores an account key's, so the key policies enforce them unchanged.
  const settings = keySettingsOf(member);
  const apiKey = credentials.generateGatewayKey('mk');
  const key = await store.insertGatewayKey({
    id: credentials.randomId('key'),
    accountId: team.accountId,
    role: member.role,
    name: `${member.email} (${team.name})`.slice(0, 200),
    keyHash: credentials.hashGatewayKey(apiKey),
    maskedKey: credentials.maskKey(apiKey),
    teamId: team.id,
    byokAccess,
    settings,
  });
  const row: MemberRow = {
    id: credentials.randomId('mem'),
    teamId: team.id,
    accountId: team.accountId,
    email: member.email,
    role: member.role,
    byokAccess,
    gatewayKeyId: key.id,
    settings,
    createdAt: new Date(services.clock.now()).toISOString(),
  };
  await store.execute(
    'INSERT INTO team_members (id, team_id, account_id, email, role, byok_access, gateway_key_id, settings, created_at, removed_at, key_issued_by, key_issued_by_member) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)',
    [
      row.id,
      row.teamId,
      row.accountId,
      row.email,
      row.role,
      row.byokAccess ? 1 : 0,
      row.gatewayKeyId,
      JSON.stringify(settings),
      row.createdAt,
      issuer.keyId,
      issuer.memberId,
    ],
  );
  return memberAnswer(row, key.maskedKey, apiKey);
}
