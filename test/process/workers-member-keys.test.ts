// KEYWAY_WORKERS=2: re-issues of one member's key at once (a double-click, a client retrying after a
// timeout, two admins, a team lead on purpose), on fresh connections the kernel hands to either worker.
// QA (qa-teams H1): each re-issue read the same old key, stored a new one, pointed the member at it (the
// last write won) and revoked only the old one: 20 at once left 3–4 live keys, the team listed one, and
// the others outlived the member's removal and the team's deletion, then served with no team rule at
// all. Now a re-issue moves the member to its key only if the member still holds the key it read and is
// still a member of a live team; the others answer 409 `conflict` and their keys are revoked. A removal
// revokes the key the member holds when it is marked removed, so a re-issue racing it leaves none.

import { describe, expect, test } from 'bun:test';
import { twoWorkersForSuite, type WorkerAnswer } from './process-helpers.ts';

// Management calls and GET /v1/usage/me only: no upstream is called.
const workers = twoWorkersForSuite('keyway-workers-member-keys', 'kw_op_WorkersMemberKeysOperator0123456789ab');
const CALLS = 20;
const adminKey = workers.adminKey;
const send = (key: string, method: string, path: string, body?: unknown): Promise<WorkerAnswer> => workers.send(method, path, body, key);

interface Member {
  id: string;
  key_id: string;
  api_key: string;
}

async function createTeam(name: string): Promise<{ id: string; member: Member }> {
  const created = await send(adminKey(), 'POST', '/v1/teams', { name, members: [{ email: 'dev@example.com', role: 'developer' }] });
  expect(created.status).toBe(201);
  return { id: String(created.body.id), member: (created.body.members as Member[])[0] as Member };
}

/** Re-issues at once, each on a connection of its own. */
async function reissueAtOnce(teamId: string, memberId: string, count: number): Promise<WorkerAnswer[]> {
  return Promise.all(Array.from({ length: count }, () => send(adminKey(), 'POST', `/v1/teams/${teamId}/members/${memberId}/keys`)));
}

const keysOf = (answers: readonly WorkerAnswer[]) => answers.flatMap((answer) => (typeof answer.body.api_key === 'string' ? [answer.body.api_key] : []));

/** The keys of `keys` still accepted, asked on fresh connections so both workers' views count. */
async function workingKeys(keys: readonly string[]): Promise<string[]> {
  const statuses = await Promise.all(keys.map(async (key) => (await send(key, 'GET', '/v1/usage/me')).status));
  return keys.filter((_, index) => statuses[index] === 200);
}

/** The team's keys that GET /v1/keys lists as active. */
async function activeTeamKeys(teamId: string): Promise<string[]> {
  const listed = (await send(adminKey(), 'GET', '/v1/keys')).body.keys as Array<{ id: string; team_id?: string | null; revoked_at?: string | null }>;
  return listed.filter((key) => key.team_id === teamId && (key.revoked_at ?? null) === null).map((key) => key.id);
}

describe('KEYWAY_WORKERS=2: re-issues of one member key at once', () => {
  test('leave one live key, the one the member lists; every other re-issue is 409 and its key revoked', async () => {
    const { id, member } = await createTeam('Concurrent re-issues');
    const answers = await reissueAtOnce(id, member.id, CALLS);
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.every((status) => status === 201 || status === 409)).toBe(true);
    for (const refused of answers.filter((answer) => answer.status === 409)) expect((refused.body.error as Record<string, unknown>).code).toBe('conflict');
    const alive = await workingKeys([member.api_key, ...keysOf(answers)]);
    expect(alive.length).toBe(1);
    const team = (await send(adminKey(), 'GET', `/v1/teams/${id}`)).body as { members: Member[] };
    expect(await activeTeamKeys(id)).toEqual([team.members[0]?.key_id ?? '']);
    expect(new Set(answers.map((answer) => answer.worker))).toEqual(new Set(['1', '2']));
  }, 60_000);

  test("the member's removal afterwards leaves none of them working", async () => {
    const { id, member } = await createTeam('Re-issues, then removal');
    const keys = keysOf(await reissueAtOnce(id, member.id, CALLS));
    expect((await send(adminKey(), 'DELETE', `/v1/teams/${id}/members/${member.id}`)).status).toBe(204);
    expect(await workingKeys(keys)).toEqual([]);
    expect(await activeTeamKeys(id)).toEqual([]);
  }, 60_000);

  test('a removal racing them leaves none of them working', async () => {
    const { id, member } = await createTeam('Re-issues racing a removal');
    const [answers, removed] = await Promise.all([reissueAtOnce(id, member.id, CALLS), send(adminKey(), 'DELETE', `/v1/teams/${id}/members/${member.id}`)]);
    expect(removed.status).toBe(204);
    expect(await workingKeys(keysOf(answers))).toEqual([]);
    expect(await activeTeamKeys(id)).toEqual([]);
  }, 60_000);

  test("the team's deletion racing them leaves no key of the team working", async () => {
    const { id, member } = await createTeam('Re-issues racing a deletion');
    const [answers, deleted] = await Promise.all([reissueAtOnce(id, member.id, CALLS), send(adminKey(), 'DELETE', `/v1/teams/${id}`)]);
    expect(deleted.status).toBe(204);
    expect(await workingKeys(keysOf(answers))).toEqual([]);
    expect(await activeTeamKeys(id)).toEqual([]);
  }, 60_000);
});
