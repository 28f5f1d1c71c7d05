// An allowed project must be one an X-Project-Tag can carry (core/wire/project-tag.ts: at most 64
// printable ASCII characters, no space at either end). QA20 found `projé`, ` lead`, `project-a ` and a
// 70-character project taken with a 201: every request tagged with one is refused 400 on its header,
// so with require_project_tag the team's members were locked out without a word.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let teamId: string;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
  const created = await call(gateway, 'POST', '/v1/teams', { name: 'projects' }, { key: gateway.defaultAdminKey });
  expect(created.status).toBe(201);
  teamId = ((await created.json()) as { id: string }).id;
});

afterAll(async () => {
  await gateway.stop();
});

const post = (projects: unknown[]) =>
  call(
    gateway,
    'POST',
    '/v1/teams',
    { name: 'tagged', byok_permissions: { usage_controls: { require_project_tag: true, allowed_projects: projects } } },
    { key: gateway.defaultAdminKey },
  );
const patch = (body: unknown) => call(gateway, 'PATCH', `/v1/teams/${teamId}`, body, { key: gateway.defaultAdminKey });

const UNUSABLE = ['projé', ' lead', 'project-a ', 'tab\there', 'line\nend', 'x'.repeat(65)];

test.each(UNUSABLE)('a project no X-Project-Tag can carry (%j) is refused on POST and PATCH, naming the entry', async (project) => {
  const projects = ['project-a', project];
  const param = 'byok_permissions.usage_controls.allowed_projects[1]';
  const created = await expectSpecError(await post(projects), 400, 'invalid_field');
  expect(created.error.param).toBe(param);
  expect(created.error.message).toContain('X-Project-Tag');
  const patched = await expectSpecError(await patch({ byok_permissions: { usage_controls: { allowed_projects: projects } } }), 400, 'invalid_field');
  expect(patched.error.param).toBe(param);
});

test('projects a header can carry are taken: spaces inside, punctuation, 64 characters', async () => {
  const projects = ['Project A', 'team/alpha:v2', 'x'.repeat(64)];
  const created = await post(projects);
  expect(created.status).toBe(201);
  const team = (await created.json()) as { byok_permissions: { usage_controls: { allowed_projects: string[] } } };
  expect(team.byok_permissions.usage_controls.allowed_projects).toEqual(projects);
  expect((await patch({ byok_permissions: { usage_controls: { allowed_projects: projects } } })).status).toBe(200);
});

test('a team stored with such a project stays editable, and keeps it, while the patch does not set the list', async () => {
  const legacy = { usage_controls: { require_project_tag: true, allowed_projects: ['project-a', 'projé'] } };
  await gateway.runtime.services.store.execute('UPDATE teams SET permissions = ? WHERE id = ?', [JSON.stringify(legacy), teamId]);
  await gateway.runtime.services.snapshot.refresh();
  const renamed = await patch({ name: 'renamed' });
  expect(renamed.status).toBe(200);
  const team = (await renamed.json()) as { byok_permissions: { usage_controls: { allowed_projects: string[] } } };
  expect(team.byok_permissions.usage_controls.allowed_projects).toEqual(['project-a', 'projé']);
});
