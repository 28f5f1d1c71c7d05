// The seed's "Team BYOK Configuration" over HTTP, as printed: an account admin creates the team, the
// developer member calls models with the official `openai` client and its own key, the intern reads
// usage only. Member keys are answered once and stored as hashes; teams are the account's alone.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { TeamsSection } from '../../plugins/teams/types.ts';
import { addProviderKeys, call, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { rejectionOf } from '../clients/client-fixtures.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';

const OPENAI_KEY = 'sk-proj-TeamsTestOpenAIKey000000000000000001';

interface Member {
  id: string;
  email: string;
  role: string;
  byok_access: boolean;
  key_id: string;
  key_status: 'active' | 'revoked';
  masked_key: string | null;
  api_key?: string;
}

interface Team {
  id: string;
  name: string;
  account_id: string;
  byok_permissions: typeof SEED_TEAM.byok_permissions;
  members: Member[];
  [field: string]: unknown;
}

let gateway: TestGateway;
let simulator: SimulatorHandle;
let adminKey: string;
let otherAdminKey: string;
let team: Team;
let developerKey: string;
let internKey: string;

function client(apiKey: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0, defaultHeaders: headers });
}

async function createTeam(body: unknown, key = adminKey): Promise<Team> {
  const response = await call(gateway, 'POST', '/v1/teams', body, { key });
  const answer = (await response.json()) as Team;
  if (response.status !== 201) throw new Error(`creating a team failed: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

async function errorOf(response: Response): Promise<{ status: number; code: string; type: string; message: string; param: string | null }> {
  const body = (await response.json()) as { error: { code: string; type: string; message: string; param: string | null } };
  return { status: response.status, ...body.error };
}

const hello = { model: 'gpt-4-turbo-preview', messages: [{ role: 'user' as const, content: 'Hello!' }] };

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  adminKey = gateway.defaultAdminKey;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
  const account = await call(gateway, 'POST', '/v1/accounts', { name: 'Other Co' });
  otherAdminKey = ((await account.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
  team = await createTeam(SEED_TEAM);
  developerKey = team.members[0]?.api_key ?? '';
  internKey = team.members[1]?.api_key ?? '';
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('creating the seed team', () => {
  test('answers 201 with the team, its id and every field as sent', () => {
    expect(team.id).toMatch(/^team_[A-Za-z0-9]+$/);
    expect(team.name).toBe('Engineering Team');
    expect(team.account_id).toBe('default');
    expect(team.byok_permissions).toEqual(SEED_TEAM.byok_permissions);
    expect(typeof team.created_at).toBe('string');
  });

  test('answers each member with a member key, once', () => {
    expect(team.members.map((member) => [member.email, member.role, member.byok_access])).toEqual([
      ['developer@company.com', 'developer', true],
      ['intern@company.com', 'viewer', false],
    ]);
    for (const member of team.members) {
      expect(member.id).toMatch(/^mem_/);
      expect(member.api_key).toMatch(/^kw_mk_[A-Za-z0-9]{40}$/);
      expect(member.masked_key).toBe(`kw_mk_…${member.api_key?.slice(-4)}`);
    }
  });

  test('the snapshot section `teams` holds the policy the policies read', () => {
    const section = gateway.runtime.services.snapshot.section<TeamsSection>('teams');
    const view = section?.byId.get(team.id);
    expect(view?.accountId).toBe('default');
    expect(view?.permissions.providers?.openai?.max_cost_per_day).toBe(100);
    expect(view?.permissions.usage_controls?.allowed_projects).toEqual(['project-a', 'project-b']);
  });

  test('listing and reading never show a member key again', async () => {
    const list = await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey });
    expect(list.status).toBe(200);
    const listText = await list.text();
    const one = await call(gateway, 'GET', `/v1/teams/${team.id}`, undefined, { key: adminKey });
    expect(one.status).toBe(200);
    const oneText = await one.text();
    for (const text of [listText, oneText]) {
      expect(text).not.toContain(developerKey);
      expect(text).not.toContain(internKey);
      expect(text).not.toContain('api_key');
    }
    const listed = (JSON.parse(listText) as { teams: Team[] }).teams.find((candidate) => candidate.id === team.id);
    expect(listed?.members.map((member) => member.email)).toEqual(['developer@company.com', 'intern@company.com']);
    expect((JSON.parse(oneText) as Team).byok_permissions).toEqual(SEED_TEAM.byok_permissions);
  });

  test('member keys are stored as hashes only', () => {
    const text = ['keyway.db', 'keyway.db-wal']
      .map((name) => join(gateway.dataDirectory, name))
      .filter((path) => existsSync(path))
      .map((path) => readFileSync(path).toString('latin1'))
      .join('');
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(developerKey);
    expect(text).not.toContain(internKey);
    expect(text).toContain(team.id);
  });
});

describe('members calling models', () => {
  test('the developer calls /v1/chat/completions with the openai client; the usage row carries team and project', async () => {
    const { data, response } = await client(developerKey, { 'X-Team-ID': team.id, 'X-Project-Tag': 'project-a' }).chat.completions.create(hello).withResponse();
    expect(data.choices[0]?.message.content).toBe('Echo: Hello!');
    const requestId = response.headers.get('x-request-id');
    await flushUsage(gateway);
    const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.gatewayKeyId === team.members[0]?.key_id);
    expect(rows.length).toBe(1);
    expect(rows[0]?.teamId).toBe(team.id);
    expect(rows[0]?.projectTag).toBe('project-a');
    expect(rows[0]?.status).toBe(200);
    if (requestId !== null) expect(rows[0]?.requestId).toBe(requestId);
  });

  test('the intern (viewer, no BYOK access) is refused at inference with 403 byok_access_denied', async () => {
    const error = (await rejectionOf(client(internKey, { 'X-Team-ID': team.id, 'X-Project-Tag': 'project-a' }).chat.completions.create(hello))) as InstanceType<
      typeof OpenAI.APIError
    >;
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(error.status).toBe(403);
    expect(error.code).toBe('byok_access_denied');
  });

  test('the intern reads its own usage: 200 on GET /v1/usage/me (its refused call is booked)', async () => {
    await flushUsage(gateway);
    const response = await call(gateway, 'GET', '/v1/usage/me', undefined, { key: internKey, headers: { 'X-Team-ID': team.id } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      team_id: string;
      byok_access: boolean;
      totals: { requests: number };
      budgets: unknown[];
      by_provider: Array<{ provider: string | null }>;
      by_model: Array<{ provider: string | null }>;
    };
    expect(body.team_id).toBe(team.id);
    expect(body.byok_access).toBe(false);
    expect(body.totals.requests).toBeGreaterThanOrEqual(1);
    // Its refused requests were served by no provider: null in both lists, the same group.
    expect(body.by_provider.map((entry) => entry.provider)).toEqual([null]);
    expect(body.by_model.map((entry) => entry.provider)).toEqual([null]);
    expect(body.budgets.length).toBe(2);
  });

  test("the developer's usage/me: its totals, by provider and model, and the team's daily budgets", async () => {
    const response = await call(gateway, 'GET', '/v1/usage/me?period=today', undefined, { key: developerKey });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      totals: { requests: number; input_tokens: number; output_tokens: number; cost_usd: number };
      by_provider: Array<{ provider: string; requests: number }>;
      by_model: Array<{ provider: string; model: string; requests: number }>;
      budgets: Array<{ provider: string; limit_usd: number; spent_today_usd: number; remaining_usd: number; resets_at: string }>;
      period: { name: string; start: string; end: string };
    };
    expect(body.period.name).toBe('today');
    expect(body.totals.requests).toBe(1);
    expect(body.totals.input_tokens).toBeGreaterThan(0);
    expect(body.totals.cost_usd).toBeGreaterThan(0);
    expect(body.by_provider).toEqual([expect.objectContaining({ provider: 'openai', requests: 1 })]);
    expect(body.by_model).toEqual([expect.objectContaining({ provider: 'openai', model: 'gpt-4-turbo-preview', requests: 1 })]);
    const openai = body.budgets.find((budget) => budget.provider === 'openai');
    expect(openai?.limit_usd).toBe(100);
    expect(openai?.spent_today_usd).toBeCloseTo(body.totals.cost_usd, 8);
    expect(openai?.remaining_usd).toBeCloseTo(100 - body.totals.cost_usd, 8);
    expect(openai?.resets_at).toMatch(/T00:00:00\.000Z$/);
    expect(body.budgets.find((budget) => budget.provider === 'anthropic')?.spent_today_usd).toBe(0);
    expect(body.budgets.some((budget) => budget.provider === 'google')).toBe(false);
  });

  test('usage/me periods: each named one, start/end, and a bad one answers 400 with the allowed list', async () => {
    for (const period of ['today', 'current_month', 'last_30_days', 'last_quarter']) {
      const response = await call(gateway, 'GET', `/v1/usage/me?period=${period}`, undefined, { key: developerKey });
      expect(response.status).toBe(200);
    }
    const ranged = await call(gateway, 'GET', '/v1/usage/me?start=2020-01-01&end=2100-01-01T00:00:00Z', undefined, { key: developerKey });
    expect(((await ranged.json()) as { totals: { requests: number } }).totals.requests).toBe(1);
    const bad = await errorOf(await call(gateway, 'GET', '/v1/usage/me?period=yesterday', undefined, { key: developerKey }));
    expect(bad).toMatchObject({ status: 400, code: 'invalid_field', param: 'period' });
    expect(bad.message).toContain('today, current_month, last_30_days, last_quarter');
    const badStart = await errorOf(await call(gateway, 'GET', '/v1/usage/me?start=tomorrow', undefined, { key: developerKey }));
    expect(badStart).toMatchObject({ status: 400, param: 'start' });
    const backwards = await errorOf(await call(gateway, 'GET', '/v1/usage/me?start=2026-02-01&end=2026-01-01', undefined, { key: developerKey }));
    expect(backwards).toMatchObject({ status: 400, param: 'end' });
    const noKey = await call(gateway, 'GET', '/v1/usage/me', undefined, { key: '' });
    expect(noKey.status).toBe(401);
  });

  test("a member key with another team's X-Team-ID is refused with 403", async () => {
    const other = await createTeam({ name: 'Other team' });
    const error = (await rejectionOf(
      client(developerKey, { 'X-Team-ID': other.id, 'X-Project-Tag': 'project-a' }).chat.completions.create(hello),
    )) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(403);
    expect(error.code).toBe('permission_denied');
  });

  test('an account admin key acts for its team with X-Team-ID, and the usage row books that team', async () => {
    const { response } = await client(adminKey, { 'X-Team-ID': team.id, 'X-Project-Tag': 'project-b' }).chat.completions.create(hello).withResponse();
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id');
    await flushUsage(gateway);
    const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
    expect(rows.length).toBe(1);
    expect(rows[0]?.teamId).toBe(team.id);
    expect(rows[0]?.projectTag).toBe('project-b');
  });

  test('X-Team-ID naming no team of the account is refused with 403, before any provider is called', async () => {
    const before = simulator.inferenceRequests().length;
    for (const teamId of ['team_doesNotExist', 'not even an id']) {
      const error = (await rejectionOf(client(adminKey, { 'X-Team-ID': teamId }).chat.completions.create(hello))) as InstanceType<typeof OpenAI.APIError>;
      expect(error.status).toBe(403);
      expect(error.code).toBe('permission_denied');
    }
    expect(simulator.inferenceRequests().length).toBe(before);
  });

  test('a secret pasted into X-Team-ID is not echoed in the refusal', async () => {
    const canary = 'sk-proj-TeamsCanaryKeyInHeader00000000000000000001';
    const before = simulator.inferenceRequests().length;
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello, { key: adminKey, headers: { 'X-Team-ID': canary } });
    const text = await response.text();
    expect(response.status).toBe(403);
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'permission_denied' } });
    expect(text).not.toContain(canary);
    expect(text).not.toContain('TeamsCanaryKeyInHeader');
    expect(text).toContain('X-Team-ID names');
    const usage = await call(gateway, 'GET', '/v1/usage/me', undefined, { key: adminKey, headers: { 'X-Team-ID': canary } });
    expect(usage.status).toBe(403);
    expect(await usage.text()).not.toContain('TeamsCanaryKeyInHeader');
    expect(gateway.output.join('\n')).not.toContain(canary);
    expect(simulator.inferenceRequests().length).toBe(before);
  });
});

describe('account isolation', () => {
  test("another account's admin sees none of the teams, and their ids answer 404", async () => {
    const list = await call(gateway, 'GET', '/v1/teams', undefined, { key: otherAdminKey });
    expect(((await list.json()) as { teams: Team[] }).teams).toEqual([]);
    for (const [method, path, body] of [
      ['GET', `/v1/teams/${team.id}`, undefined],
      ['PATCH', `/v1/teams/${team.id}`, { name: 'Hijacked' }],
      ['DELETE', `/v1/teams/${team.id}`, undefined],
      ['POST', `/v1/teams/${team.id}/members`, { email: 'spy@other.com', role: 'developer' }],
      ['DELETE', `/v1/teams/${team.id}/members/${team.members[0]?.id}`, undefined],
      ['POST', `/v1/teams/${team.id}/members/${team.members[0]?.id}/keys`, undefined],
    ] as const) {
      const response = await call(gateway, method, path, body, { key: otherAdminKey });
      expect(await errorOf(response)).toMatchObject({ status: 404, code: 'not_found', type: 'not_found_error' });
    }
    const still = await call(gateway, 'GET', `/v1/teams/${team.id}`, undefined, { key: adminKey });
    expect(((await still.json()) as Team).name).toBe('Engineering Team');
  });

  test("another account's admin cannot act for the team with X-Team-ID", async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello, { key: otherAdminKey, headers: { 'X-Team-ID': team.id } });
    expect(await errorOf(response)).toMatchObject({ status: 403, code: 'permission_denied' });
  });

  test('the other account has teams of its own, invisible to the first', async () => {
    const own = await createTeam({ name: 'Theirs', members: [{ email: 'x@other.com', role: 'developer' }] }, otherAdminKey);
    expect(own.account_id).not.toBe('default');
    expect(own.members[0]?.byok_access).toBe(true);
    const mine = (await (await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey })).json()) as { teams: Team[] };
    expect(mine.teams.some((candidate) => candidate.id === own.id)).toBe(false);
    const response = await call(gateway, 'GET', `/v1/teams/${own.id}`, undefined, { key: adminKey });
    expect(response.status).toBe(404);
  });
});

describe('members and their keys', () => {
  test('only admins manage teams: member keys and developer account keys are refused', async () => {
    for (const key of [developerKey, internKey]) {
      expect((await call(gateway, 'POST', '/v1/teams', { name: 'Nope' }, { key })).status).toBe(403);
      expect((await call(gateway, 'GET', '/v1/teams', undefined, { key })).status).toBe(403);
    }
    const created = await call(gateway, 'POST', '/v1/keys', { role: 'developer' }, { key: adminKey });
    const developerAccountKey = ((await created.json()) as { api_key: string }).api_key;
    expect((await call(gateway, 'POST', '/v1/teams', { name: 'Nope' }, { key: developerAccountKey })).status).toBe(403);
    const acting = await call(gateway, 'POST', '/v1/chat/completions', hello, { key: developerAccountKey, headers: { 'X-Team-ID': team.id } });
    expect(await errorOf(acting)).toMatchObject({ status: 403, code: 'permission_denied' });
  });

  test('adding a member answers its key once; the same email twice is a conflict', async () => {
    const response = await call(gateway, 'POST', `/v1/teams/${team.id}/members`, { email: 'new@company.com', role: 'developer' }, { key: adminKey });
    expect(response.status).toBe(201);
    const member = (await response.json()) as Member & { team_id: string };
    expect(member.api_key).toMatch(/^kw_mk_/);
    expect(member.team_id).toBe(team.id);
    expect(member.byok_access).toBe(true);
    const me = await call(gateway, 'GET', '/v1/usage/me', undefined, { key: member.api_key });
    expect(((await me.json()) as { team_id: string }).team_id).toBe(team.id);
    const again = await call(gateway, 'POST', `/v1/teams/${team.id}/members`, { email: 'NEW@company.com', role: 'viewer' }, { key: adminKey });
    expect(await errorOf(again)).toMatchObject({ status: 409, code: 'conflict' });
  });

  test('a viewer with byok_access: true is refused: it would be answered true and still call nothing (QA20)', async () => {
    const added = await call(
      gateway,
      'POST',
      `/v1/teams/${team.id}/members`,
      { email: 'reader@company.com', role: 'viewer', byok_access: true },
      { key: adminKey },
    );
    expect(await errorOf(added)).toMatchObject({ status: 400, code: 'invalid_field', param: 'byok_access' });
    const created = await call(
      gateway,
      'POST',
      '/v1/teams',
      {
        name: 'Readers',
        members: [
          { email: 'dev@company.com', role: 'developer' },
          { email: 'reader@company.com', role: 'viewer', byok_access: true },
        ],
      },
      { key: adminKey },
    );
    expect(await errorOf(created)).toMatchObject({ status: 400, code: 'invalid_field', param: 'members[1].byok_access' });
    // Said false, or left to its default (false), a viewer is taken as before.
    const reader = await call(
      gateway,
      'POST',
      `/v1/teams/${team.id}/members`,
      { email: 'reader@company.com', role: 'viewer', byok_access: false },
      { key: adminKey },
    );
    expect(reader.status).toBe(201);
    expect(((await reader.json()) as Member).byok_access).toBe(false);
  });

  test('re-issuing a key answers the new key once and revokes the old one at once', async () => {
    const created = await createTeam({ name: 'Rotating', members: [{ email: 'dev@company.com', role: 'developer', byok_access: true }] });
    const member = created.members[0] as Member;
    const oldKey = member.api_key as string;
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: oldKey })).status).toBe(200);
    const response = await call(gateway, 'POST', `/v1/teams/${created.id}/members/${member.id}/keys`, undefined, { key: adminKey });
    expect(response.status).toBe(201);
    const reissued = (await response.json()) as Member;
    expect(reissued.id).toBe(member.id);
    expect(reissued.api_key).toMatch(/^kw_mk_/);
    expect(reissued.api_key).not.toBe(oldKey);
    expect(reissued.key_id).not.toBe(member.key_id);
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: oldKey })).status).toBe(401);
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: reissued.api_key })).status).toBe(200);
    const completion = await client(reissued.api_key as string).chat.completions.create(hello);
    expect(completion.choices[0]?.message.content).toBe('Echo: Hello!');
    const read = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(read.members[0]?.key_id).toBe(reissued.key_id);
  });

  test('removing a member revokes its key', async () => {
    const created = await createTeam({
      name: 'Shrinking',
      members: [
        { email: 'leaver@company.com', role: 'developer' },
        { email: 'stayer@company.com', role: 'viewer' },
      ],
    });
    const [leaver, stayer] = created.members as [Member, Member];
    const response = await call(gateway, 'DELETE', `/v1/teams/${created.id}/members/${leaver.id}`, undefined, { key: adminKey });
    expect(response.status).toBe(204);
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: leaver.api_key })).status).toBe(401);
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: stayer.api_key })).status).toBe(200);
    const read = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(read.members.map((member) => member.email)).toEqual(['stayer@company.com']);
    const again = await call(gateway, 'DELETE', `/v1/teams/${created.id}/members/${leaver.id}`, undefined, { key: adminKey });
    expect(again.status).toBe(404);
  });

  test('a member whose key is revoked with DELETE /v1/keys stays listed as revoked until its key is re-issued', async () => {
    const created = await createTeam({ name: 'Ghosts', members: [{ email: 'ghost@company.com', role: 'developer' }] });
    const ghost = created.members[0] as Member;
    expect(ghost).toMatchObject({ key_status: 'active', masked_key: `kw_mk_…${ghost.api_key?.slice(-4)}` });
    expect((await call(gateway, 'DELETE', `/v1/keys/${ghost.key_id}`, undefined, { key: adminKey })).status).toBe(204);
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: ghost.api_key })).status).toBe(401);

    const read = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(read.members).toHaveLength(1);
    expect(read.members[0]).toMatchObject({ id: ghost.id, email: 'ghost@company.com', key_id: ghost.key_id, key_status: 'revoked', masked_key: null });
    const listed = ((await (await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey })).json()) as { teams: Team[] }).teams;
    expect(listed.find((candidate) => candidate.id === created.id)?.members[0]?.key_status).toBe('revoked');
    // Still a member: adding the address again is the same conflict as for any member.
    const again = await call(gateway, 'POST', `/v1/teams/${created.id}/members`, { email: 'ghost@company.com', role: 'developer' }, { key: adminKey });
    expect(await errorOf(again)).toMatchObject({ status: 409, code: 'conflict' });

    const response = await call(gateway, 'POST', `/v1/teams/${created.id}/members/${ghost.id}/keys`, undefined, { key: adminKey });
    expect(response.status).toBe(201);
    const reissued = (await response.json()) as Member;
    expect(reissued).toMatchObject({ id: ghost.id, key_status: 'active' });
    expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key: reissued.api_key })).status).toBe(200);
    const after = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(after.members[0]).toMatchObject({ key_id: reissued.key_id, key_status: 'active', masked_key: reissued.masked_key });
    // Removing it works as for any member.
    expect((await call(gateway, 'DELETE', `/v1/teams/${created.id}/members/${ghost.id}`, undefined, { key: adminKey })).status).toBe(204);
  });
});

describe('changing and deleting teams', () => {
  test('PATCH merges permissions: objects merge, null removes, arrays replace', async () => {
    const created = await createTeam({ ...SEED_TEAM, members: [] });
    const response = await call(
      gateway,
      'PATCH',
      `/v1/teams/${created.id}`,
      {
        name: 'Platform Team',
        byok_permissions: { providers: { openai: { max_cost_per_day: 200 }, google: null }, usage_controls: { allowed_projects: ['project-c'] } },
        rate_limits: { requests_per_minute: 60 },
        hosted_tools: { web_search: true, mcp_servers: ['https://mcp.example.com/*'] },
        allowed_ips: ['10.0.0.0/8'],
      },
      { key: adminKey },
    );
    expect(response.status).toBe(200);
    const patched = (await response.json()) as Team;
    expect(patched.name).toBe('Platform Team');
    expect(patched.byok_permissions.providers.openai).toEqual({ ...SEED_TEAM.byok_permissions.providers.openai, max_cost_per_day: 200 });
    expect(Object.keys(patched.byok_permissions.providers).sort()).toEqual(['anthropic', 'openai']);
    expect(patched.byok_permissions.usage_controls).toEqual({ ...SEED_TEAM.byok_permissions.usage_controls, allowed_projects: ['project-c'] });
    expect(patched.rate_limits).toEqual({ requests_per_minute: 60 });
    expect(patched.allowed_ips).toEqual(['10.0.0.0/8']);
    const view = gateway.runtime.services.snapshot.section<TeamsSection>('teams')?.byId.get(created.id);
    expect(view?.name).toBe('Platform Team');
    expect(view?.permissions.providers?.openai?.max_cost_per_day).toBe(200);
    expect(view?.permissions.rate_limits?.requests_per_minute).toBe(60);
    expect(view?.permissions.hosted_tools?.mcp_servers).toEqual(['https://mcp.example.com/*']);
    expect(view?.permissions.allowed_ips).toEqual(['10.0.0.0/8']);
  });

  test('PATCH checks the merged team and refuses members', async () => {
    const invalid = await call(
      gateway,
      'PATCH',
      `/v1/teams/${team.id}`,
      { byok_permissions: { providers: { openai: { max_cost_per_day: -1 } } } },
      { key: adminKey },
    );
    expect(await errorOf(invalid)).toMatchObject({ status: 400, code: 'invalid_field', param: 'byok_permissions.providers.openai.max_cost_per_day' });
    const members = await call(gateway, 'PATCH', `/v1/teams/${team.id}`, { members: [] }, { key: adminKey });
    expect(await errorOf(members)).toMatchObject({ status: 400, param: 'members' });
    const unknown = await call(gateway, 'PATCH', `/v1/teams/${team.id}`, { budget: 3 }, { key: adminKey });
    expect((await errorOf(unknown)).status).toBe(400);
    const unchanged = (await (await call(gateway, 'GET', `/v1/teams/${team.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(unchanged.byok_permissions).toEqual(SEED_TEAM.byok_permissions);
  });

  test('PATCH refuses a __proto__ field as POST does, instead of dropping it with a 200', async () => {
    const created = await createTeam({ name: 'Proto', rate_limits: { requests_per_minute: 60 } });
    for (const [body, param] of [
      ['{"rate_limits":{"__proto__":{"requests_per_minute":1}}}', 'rate_limits.__proto__'],
      ['{"byok_permissions":{"__proto__":{}}}', 'byok_permissions.__proto__'],
      ['{"byok_permissions":{"usage_controls":{"__proto__":{"log_all_requests":false}}}}', 'byok_permissions.usage_controls.__proto__'],
      ['{"hosted_tools":{"__proto__":{"web_search":true}}}', 'hosted_tools.__proto__'],
    ] as const) {
      const refused = await errorOf(await call(gateway, 'PATCH', `/v1/teams/${created.id}`, body, { key: adminKey }));
      expect(refused).toMatchObject({ status: 400, code: 'invalid_field', param });
      expect(refused.message).toContain('unknown field');
    }
    const posted = await errorOf(await call(gateway, 'POST', '/v1/teams', '{"name":"P2","rate_limits":{"__proto__":{}}}', { key: adminKey }));
    expect(posted).toMatchObject({ status: 400, param: 'rate_limits.__proto__' });
    const unchanged = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(unchanged.rate_limits).toEqual({ requests_per_minute: 60 });
    expect(unchanged.updated_at).toBe(created.updated_at);
  });

  test('PATCH holds the merged provider list to 100 providers', async () => {
    const providers = (from: number, count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, index) => [`provider-${from + index}`, { enabled: true }]));
    const created = await createTeam({ name: 'Many providers', byok_permissions: { providers: providers(0, 100) } });
    const refused = await errorOf(
      await call(gateway, 'PATCH', `/v1/teams/${created.id}`, { byok_permissions: { providers: providers(100, 1) } }, { key: adminKey }),
    );
    expect(refused).toMatchObject({ status: 400, param: 'byok_permissions.providers' });
    expect(refused.message).toContain('at most 100 providers');
  });

  test('DELETE removes the team and revokes every member key', async () => {
    const created = await createTeam({
      name: 'Doomed',
      members: [
        { email: 'a@company.com', role: 'developer' },
        { email: 'b@company.com', role: 'admin' },
      ],
    });
    const keys = created.members.map((member) => member.api_key as string);
    const response = await call(gateway, 'DELETE', `/v1/teams/${created.id}`, undefined, { key: adminKey });
    expect(response.status).toBe(204);
    for (const key of keys) expect((await call(gateway, 'GET', '/v1/usage/me', undefined, { key })).status).toBe(401);
    expect((await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).status).toBe(404);
    expect((await call(gateway, 'DELETE', `/v1/teams/${created.id}`, undefined, { key: adminKey })).status).toBe(404);
    expect(gateway.runtime.services.snapshot.section<TeamsSection>('teams')?.byId.has(created.id)).toBe(false);
    const acting = await call(gateway, 'POST', '/v1/chat/completions', hello, { key: adminKey, headers: { 'X-Team-ID': created.id } });
    expect(await errorOf(acting)).toMatchObject({ status: 403, code: 'permission_denied' });
  });

  test('a team admin member manages its own team only', async () => {
    const created = await createTeam({ name: 'Led', members: [{ email: 'lead@company.com', role: 'admin' }] });
    const leadKey = created.members[0]?.api_key as string;
    const own = await call(gateway, 'POST', `/v1/teams/${created.id}/members`, { email: 'report@company.com', role: 'developer' }, { key: leadKey });
    expect(own.status).toBe(201);
    const listed = (await (await call(gateway, 'GET', '/v1/teams', undefined, { key: leadKey })).json()) as { teams: Team[] };
    expect(listed.teams.map((candidate) => candidate.id)).toEqual([created.id]);
    expect((await call(gateway, 'GET', `/v1/teams/${team.id}`, undefined, { key: leadKey })).status).toBe(404);
    expect((await call(gateway, 'POST', '/v1/teams', { name: 'Mine' }, { key: leadKey })).status).toBe(403);
    expect((await call(gateway, 'GET', '/v1/approvals', undefined, { key: leadKey })).status).toBe(200);
  });

  test("a team admin member's key cannot act on the account: keys, provider keys, settings, analytics, exports, its team's policy", async () => {
    const created = await createTeam({ name: 'Escalation', members: [{ email: 'lead@company.com', role: 'admin' }] });
    const leadKey = created.members[0]?.api_key as string;
    const keysBefore = await (await call(gateway, 'GET', '/v1/keys', undefined, { key: adminKey })).text();
    const attempts: Array<[string, string, unknown]> = [
      ['POST', '/v1/keys', { name: 'escalate', role: 'admin' }],
      ['GET', '/v1/keys', undefined],
      ['DELETE', '/v1/keys/key_default_admin', undefined],
      ['POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: 'sk-proj-EscalationCanary000000000000000000001' }] }],
      ['GET', '/v1/providers', undefined],
      ['PUT', '/v1/settings/routing', { routing: { strategy: 'cost_optimized' } }],
      ['GET', '/v1/analytics/byok?period=today', undefined],
      ['GET', '/v1/analytics/cost-comparison?period=today', undefined],
      ['POST', '/v1/billing/export', { type: 'all_usage', period: 'today' }],
      ['GET', '/v1/reconciliation/admin-keys', undefined],
      ['DELETE', '/v1/reconciliation/admin-keys/openai', undefined],
      ['GET', '/v1/audit-logs', undefined],
      ['PATCH', `/v1/teams/${created.id}`, { byok_permissions: { providers: { openai: { max_cost_per_day: null } } } }],
      ['DELETE', `/v1/teams/${created.id}`, undefined],
    ];
    for (const [method, path, body] of attempts) {
      const response = await call(gateway, method, path, body, { key: leadKey });
      expect({ method, path, error: await errorOf(response) }).toMatchObject({ method, path, error: { status: 403, code: 'permission_denied' } });
    }
    expect(await (await call(gateway, 'GET', '/v1/keys', undefined, { key: adminKey })).text()).toBe(keysBefore);
    expect((await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: leadKey })).status).toBe(200);
  });
});

describe('validation', () => {
  const cases: Array<[string, unknown, number, string | null]> = [
    ['no name', { byok_permissions: {} }, 400, 'name'],
    ['an empty name', { name: '' }, 400, 'name'],
    ['an unknown role', { name: 'T', members: [{ email: 'a@b.co', role: 'owner' }] }, 400, 'members[0].role'],
    ['a bad email', { name: 'T', members: [{ email: 'nobody', role: 'developer' }] }, 400, 'members[0].email'],
    [
      'the same email twice',
      {
        name: 'T',
        members: [
          { email: 'a@b.co', role: 'developer' },
          { email: 'A@b.co', role: 'viewer' },
        ],
      },
      400,
      'members[1].email',
    ],
    [
      'a misspelt limit',
      { name: 'T', byok_permissions: { providers: { openai: { enabled: true, max_cost_per_dya: 5 } } } },
      400,
      'byok_permissions.providers.openai.max_cost_per_dya',
    ],
    [
      'a negative budget',
      { name: 'T', byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: -5 } } } },
      400,
      'byok_permissions.providers.openai.max_cost_per_day',
    ],
    [
      'an MCP server that is no URL pattern',
      { name: 'T', hosted_tools: { mcp_servers: ['https://mcp.example.com/*', 'not a url'] } },
      400,
      'hosted_tools.mcp_servers[1]',
    ],
    ['an MCP server without a scheme', { name: 'T', hosted_tools: { mcp_servers: ['mcp.example.com'] } }, 400, 'hosted_tools.mcp_servers[0]'],
    ['an MCP server with user info', { name: 'T', hosted_tools: { mcp_servers: ['https://user@mcp.example.com/'] } }, 400, 'hosted_tools.mcp_servers[0]'],
    ['an MCP server with a bad port', { name: 'T', hosted_tools: { mcp_servers: ['https://mcp.example.com:http/'] } }, 400, 'hosted_tools.mcp_servers[0]'],
    ['an MCP server with an empty host label', { name: 'T', hosted_tools: { mcp_servers: ['https://mcp..example.com/'] } }, 400, 'hosted_tools.mcp_servers[0]'],
    [
      'a provider name that is no name',
      { name: 'T', byok_permissions: { providers: { 'Open AI': { enabled: true } } } },
      400,
      'byok_permissions.providers.Open AI',
    ],
    [
      'models as a string',
      { name: 'T', byok_permissions: { providers: { openai: { enabled: true, models: 'gpt-4o' } } } },
      400,
      'byok_permissions.providers.openai.models',
    ],
    ['a bad rate limit', { name: 'T', rate_limits: { requests_per_minute: 0 } }, 400, 'rate_limits.requests_per_minute'],
    [
      'more than 100 providers (50,000 were taken)',
      { name: 'T', byok_permissions: { providers: Object.fromEntries(Array.from({ length: 50_000 }, (_, index) => [`p${index}`, { enabled: true }])) } },
      400,
      'byok_permissions.providers',
    ],
    ['an unknown top-level field', { name: 'T', budget: 5 }, 400, 'budget'],
  ];
  test.each(cases)('%s answers 400 naming the field', async (_label, body, status, param) => {
    const before = ((await (await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey })).json()) as { teams: Team[] }).teams.length;
    const error = await errorOf(await call(gateway, 'POST', '/v1/teams', body, { key: adminKey }));
    expect(error.status).toBe(status);
    expect(error.type).toBe('invalid_request_error');
    expect(error.param).toBe(param);
    const after = ((await (await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey })).json()) as { teams: Team[] }).teams.length;
    expect(after).toBe(before);
  });

  test('a bad MCP server entry is refused by PATCH too, naming it and its rule; `*` and patterns are taken', async () => {
    const created = await createTeam({ name: 'Tools', hosted_tools: { mcp_servers: ['*', 'https://*.mycorp.com/*', 'http://localhost:8931/sse'] } });
    const refused = await errorOf(
      await call(gateway, 'PATCH', `/v1/teams/${created.id}`, { hosted_tools: { mcp_servers: ['https://ok.example/', 'a b'] } }, { key: adminKey }),
    );
    expect(refused).toMatchObject({ status: 400, code: 'invalid_field', param: 'hosted_tools.mcp_servers[1]' });
    expect(refused.message).toContain('MCP server URL pattern');
    const unchanged = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: adminKey })).json()) as Team;
    expect(unchanged.hosted_tools).toEqual({ mcp_servers: ['*', 'https://*.mycorp.com/*', 'http://localhost:8931/sse'] });
  });

  test('`enabled` defaults to true: a provider listed only for its budget or models is enabled, and shown so (QA12)', async () => {
    const created = await createTeam({
      name: 'Budget only',
      byok_permissions: { providers: { openai: { require_approval_above: 5 }, anthropic: { models: ['claude-*'], max_cost_per_day: 10 } } },
    });
    const providersOf = (answer: Team): Record<string, unknown> => answer.byok_permissions.providers as unknown as Record<string, unknown>;
    expect(providersOf(created)).toEqual({
      openai: { enabled: true, require_approval_above: 5 },
      anthropic: { enabled: true, models: ['claude-*'], max_cost_per_day: 10 },
    });
    const view = gateway.runtime.services.snapshot.section<TeamsSection>('teams')?.byId.get(created.id);
    expect(view?.permissions.providers?.openai?.enabled).toBe(true);
    // Turned off, then `null` (removed) brings back the default.
    const patch = (enabled: boolean | null) =>
      call(gateway, 'PATCH', `/v1/teams/${created.id}`, { byok_permissions: { providers: { openai: { enabled } } } }, { key: adminKey });
    expect(providersOf((await (await patch(false)).json()) as Team).openai).toEqual({ enabled: false, require_approval_above: 5 });
    const restored = await patch(null);
    expect(restored.status).toBe(200);
    expect(providersOf((await restored.json()) as Team).openai).toEqual({ enabled: true, require_approval_above: 5 });
  });

  test('bad JSON and a non-object body answer 400', async () => {
    expect(await errorOf(await call(gateway, 'POST', '/v1/teams', '{"name":', { key: adminKey }))).toMatchObject({ status: 400, code: 'invalid_json' });
    expect((await errorOf(await call(gateway, 'POST', '/v1/teams', '[]', { key: adminKey }))).status).toBe(400);
    const member = await call(gateway, 'POST', `/v1/teams/${team.id}/members`, { email: 'x@y.z' }, { key: adminKey });
    expect(await errorOf(member)).toMatchObject({ status: 400, code: 'missing_field', param: 'role' });
  });

  test('an unknown team or member answers 404', async () => {
    expect((await call(gateway, 'GET', '/v1/teams/team_nope', undefined, { key: adminKey })).status).toBe(404);
    expect((await call(gateway, 'POST', `/v1/teams/${team.id}/members/mem_nope/keys`, undefined, { key: adminKey })).status).toBe(404);
    expect((await call(gateway, 'DELETE', `/v1/teams/${team.id}/members/mem_nope`, undefined, { key: adminKey })).status).toBe(404);
  });
});
