// Finance names every team and key it was billed for, after real requests through the gateway: a team
// deleted since (`Finance, "Quoted" Team`, QA's) keeps its name in GET /v1/analytics/byok and in the
// billing export's `team_name` column (usage and team_breakdown rows, CSV and JSON, formula-safe), and a
// revoked key keeps its name in group_by=key. A deleted team is still gone everywhere else.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, expectSpecError, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { parseCsv } from './csv-reader.ts';

const OPENAI_KEY = 'sk-proj-DeletedNamesCanaryOpenAI00000000001';
const DELETED_NAME = 'Finance, "Quoted" Team';
const LIVE_NAME = '=Ops';
const WIDE = { start: '2000-01-01', end: '2100-01-01' };

let openai: SimulatorHandle;
let gateway: TestGateway;
let adminKey: string;
let deletedTeamId: string;
let deletedMemberKey: string;
let liveTeamId: string;
let revokedKeyId: string;

type Entry = Record<string, unknown>;

async function createTeam(name: string): Promise<{ id: string; memberKey: string }> {
  const response = await call(
    gateway,
    'POST',
    '/v1/teams',
    { name, byok_permissions: { providers: { openai: {} } }, members: [{ email: 'lead@company.com', role: 'developer' }] },
    { key: adminKey },
  );
  expect(response.status).toBe(201);
  const body = (await response.json()) as { id: string; members: Array<{ api_key: string }> };
  return { id: body.id, memberKey: body.members[0]?.api_key ?? '' };
}

async function chat(key: string): Promise<void> {
  const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Close the books.' }] }, { key });
  expect(response.status).toBe(200);
  await response.text();
}

async function exportOf(format: 'csv' | 'json'): Promise<string> {
  const body = { type: 'all_usage', ...WIDE, format, include: ['team_breakdown', 'key_breakdown'] };
  const response = await call(gateway, 'POST', '/v1/billing/export', body, { key: adminKey });
  expect(response.status).toBe(200);
  return response.text();
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` } });
  adminKey = gateway.defaultAdminKey;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);

  const deleted = await createTeam(DELETED_NAME);
  deletedTeamId = deleted.id;
  deletedMemberKey = deleted.memberKey;
  const live = await createTeam(LIVE_NAME);
  liveTeamId = live.id;
  const created = await call(gateway, 'POST', '/v1/keys', { name: 'ci-runner', role: 'developer' }, { key: adminKey });
  expect(created.status).toBe(201);
  const key = (await created.json()) as { id: string; api_key: string };
  revokedKeyId = key.id;

  await chat(deleted.memberKey);
  await chat(deleted.memberKey);
  await chat(live.memberKey);
  await chat(key.api_key);
  await flushUsage(gateway);

  expect((await call(gateway, 'DELETE', `/v1/teams/${deletedTeamId}`, undefined, { key: adminKey })).status).toBe(204);
  expect((await call(gateway, 'DELETE', `/v1/keys/${revokedKeyId}`, undefined, { key: adminKey })).status).toBe(204);
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
});

describe('names that outlive their team or key', () => {
  test('GET /v1/analytics/byok names a deleted team and a revoked key', async () => {
    const response = await call(gateway, 'GET', `/v1/analytics/byok?start=${WIDE.start}&end=${WIDE.end}&group_by=team,key`, undefined, { key: adminKey });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { by_team: Entry[]; by_key: Entry[] };
    // QA: the row's `name` held the team id once the team was deleted.
    expect(answer.by_team.find((entry) => entry.team_id === deletedTeamId)).toMatchObject({ name: DELETED_NAME, requests: 2 });
    expect(answer.by_team.find((entry) => entry.team_id === liveTeamId)).toMatchObject({ name: LIVE_NAME, requests: 1 });
    expect(answer.by_key.find((entry) => entry.key_id === revokedKeyId)).toMatchObject({ name: 'ci-runner', masked_key: null, requests: 1 });
  });

  test('the CSV export carries team_name, a deleted team and a formula-like name included, on usage and team_breakdown rows', async () => {
    const [header, ...cells] = parseCsv(await exportOf('csv'));
    const columns = header as string[];
    // After every earlier column, so a reader by position keeps working.
    expect(columns.at(-1)).toBe('team_name');
    const records = cells.map((row) => Object.fromEntries(columns.map((column, index) => [column, row[index] ?? ''])));
    const teams = records.filter((record) => record.record_type === 'team_breakdown');
    expect(teams.find((record) => record.team_id === deletedTeamId)).toMatchObject({ team_name: DELETED_NAME, requests: '2' });
    expect(teams.find((record) => record.team_id === liveTeamId)).toMatchObject({ team_name: `'${LIVE_NAME}` });
    expect(teams.find((record) => record.team_id === '')).toMatchObject({ team_name: '' });
    const usage = records.filter((record) => record.record_type === 'usage');
    expect(usage.filter((record) => record.team_id === deletedTeamId).map((record) => record.team_name)).toEqual([DELETED_NAME, DELETED_NAME]);
    // Only the team breakdown has a team: the other rows leave the column empty.
    expect(records.filter((record) => record.record_type === 'key_breakdown').every((record) => record.team_name === '')).toBe(true);
  });

  test('the JSON export carries team_name on its rows and team_breakdown entries', async () => {
    const file = JSON.parse(await exportOf('json')) as { data: Entry[]; team_breakdown: Entry[] };
    expect(file.team_breakdown.find((entry) => entry.team_id === deletedTeamId)).toMatchObject({ team_name: DELETED_NAME, requests: 2 });
    // JSON is not a spreadsheet: the name exactly as the team was named.
    expect(file.team_breakdown.find((entry) => entry.team_id === liveTeamId)).toMatchObject({ team_name: LIVE_NAME });
    expect(file.team_breakdown.find((entry) => entry.team_id === null)).toMatchObject({ team_name: null });
    expect(file.data.filter((row) => row.team_id === deletedTeamId).every((row) => row.team_name === DELETED_NAME)).toBe(true);
  });

  test('the deleted team is still gone: not listed, not found, its member key and its id refused', async () => {
    const listed = (await (await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey })).json()) as { teams: Entry[] };
    expect(listed.teams.map((team) => team.id)).toEqual([liveTeamId]);
    await expectSpecError(await call(gateway, 'GET', `/v1/teams/${deletedTeamId}`, undefined, { key: adminKey }), 404, 'not_found');
    await expectSpecError(await call(gateway, 'PATCH', `/v1/teams/${deletedTeamId}`, { name: 'Back' }, { key: adminKey }), 404, 'not_found');
    await expectSpecError(
      await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }, { key: deletedMemberKey }),
      401,
      'invalid_api_key',
    );
    const acting = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] },
      { key: adminKey, headers: { 'x-team-id': deletedTeamId } },
    );
    await expectSpecError(acting, 403, 'permission_denied');
  });
});
