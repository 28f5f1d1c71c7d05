// A deleted team's pending approvals close with it (QA: after DELETE /v1/teams/{id}, an account admin
// still approved the team's pending approval, 200). The deletion cancels them (`cancelled`, reason
// `team_deleted`, `decided_by` the key that deleted the team), its audit entry lists them as they were
// and as cancelled, and a decision on one is 409 `conflict`.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway } from './team-fixture.ts';

// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };

interface Approval {
  id: string;
  team_id: string;
  status: string;
  reason: string | null;
  decided_by: string | null;
  decided_at: string | null;
}

let setup: TeamGateway;

beforeAll(async () => {
  setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } });
});

afterAll(async () => {
  await setup.stop();
});

/** A second team of the account, with one developer: its id and the developer's key. */
async function teamWithDeveloper(name: string): Promise<{ teamId: string; developerKey: string }> {
  const response = await call(
    setup.gateway,
    'POST',
    '/v1/teams',
    {
      name,
      byok_permissions: { providers: { openai: { max_cost_per_day: 100, require_approval_above: 0.005 } } },
      members: [{ email: `dev@${name.toLowerCase().replaceAll(' ', '-')}.com`, role: 'developer' }],
    },
    { key: setup.adminKey },
  );
  const body = (await response.json()) as { id: string; members: Array<{ api_key: string }> };
  if (response.status !== 201) throw new Error(`creating the team failed: ${response.status} ${JSON.stringify(body)}`);
  return { teamId: body.id, developerKey: body.members[0]?.api_key ?? '' };
}

async function askedBy(key: string): Promise<string> {
  const refused = await expectSpecError(await call(setup.gateway, 'POST', '/v1/chat/completions', BIG, { key }), 403, 'approval_required');
  return String(refused.error.approval_id);
}

async function listed(status: string): Promise<Approval[]> {
  const response = await call(setup.gateway, 'GET', `/v1/approvals?status=${status}`, undefined, { key: setup.adminKey });
  expect(response.status).toBe(200);
  return ((await response.json()) as { approvals: Approval[] }).approvals;
}

const decide = (approvalId: string, decision: 'approve' | 'deny') =>
  call(setup.gateway, 'POST', `/v1/approvals/${approvalId}/${decision}`, undefined, { key: setup.adminKey });

describe("a deleted team's approvals", () => {
  test('deleting the team cancels its pending approvals, and a decision on one is 409', async () => {
    const { teamId, developerKey } = await teamWithDeveloper('Doomed Team');
    const approvalId = await askedBy(developerKey);
    // The other team's pending approval is left alone.
    const elsewhere = await askedBy(setup.memberKey);

    const deleted = await call(setup.gateway, 'DELETE', `/v1/teams/${teamId}`, undefined, { key: setup.adminKey });
    expect(deleted.status).toBe(204);

    for (const decision of ['approve', 'deny'] as const) {
      const refused = await expectSpecError(await decide(approvalId, decision), 409, 'conflict');
      expect(refused.error.message).toContain('its team was deleted');
    }
    const cancelled = (await listed('cancelled')).find((approval) => approval.id === approvalId);
    expect(cancelled).toMatchObject({ id: approvalId, team_id: teamId, status: 'cancelled', reason: 'team_deleted' });
    expect(cancelled?.decided_by).toMatch(/^key_/);
    expect(typeof cancelled?.decided_at).toBe('string');
    expect((await listed('pending')).map((approval) => approval.id)).toEqual([elsewhere]);
    expect((await decide(elsewhere, 'approve')).status).toBe(200);

    // The deletion's audit entry says what it closed: the approval as it was, and as cancelled, by the deleting key.
    const audit = (await (await call(setup.gateway, 'GET', '/v1/audit-logs?type=admin&period=today', undefined, { key: setup.adminKey })).json()) as {
      events: Array<{ request_id: string; actor: { key_id: string }; before: Record<string, unknown>; after: Record<string, unknown> | null }>;
    };
    const entry = audit.events.find((event) => event.request_id === deleted.headers.get('x-request-id'));
    expect(entry?.actor.key_id).toBe(cancelled?.decided_by as string);
    expect(entry?.before).toMatchObject({ id: teamId, name: 'Doomed Team' });
    expect(entry?.before.pending_approvals).toEqual([{ ...cancelled, status: 'pending', reason: null, decided_by: null, decided_at: null }]);
    expect(entry?.after).toEqual({ cancelled_approvals: [cancelled] });
  });

  test('a pending approval of a team deleted without cancelling it (an earlier release) cannot be decided either', async () => {
    const { teamId, developerKey } = await teamWithDeveloper('Old Team');
    const approvalId = await askedBy(developerKey);
    expect((await call(setup.gateway, 'DELETE', `/v1/teams/${teamId}`, undefined, { key: setup.adminKey })).status).toBe(204);
    // As a team deleted before deletions closed its approvals left them: still pending in the store.
    await setup.gateway.runtime.store.execute("UPDATE approvals SET status = 'pending', reason = NULL, decided_by = NULL, decided_at = NULL WHERE id = ?", [
      approvalId,
    ]);

    await expectSpecError(await decide(approvalId, 'approve'), 409, 'conflict');
    const [teamDeletedAt] = await setup.gateway.runtime.store.query('SELECT deleted_at FROM teams WHERE id = ?', [teamId]);
    expect((await listed('cancelled')).find((approval) => approval.id === approvalId)).toMatchObject({
      status: 'cancelled',
      reason: 'team_deleted',
      decided_by: null,
      decided_at: String(teamDeletedAt?.deleted_at),
    });
  });
});
