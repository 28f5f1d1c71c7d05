// A team's model allow-list entries and allowed projects are matched against what requests send: a
// model name holding a control character is refused on every request (core/wire/request-validation.ts),
// and an X-Project-Tag is printable ASCII of at most 64 characters (core/wire/project-tag.ts). An entry
// no request could ever match is a rule that silently allows nothing, so it is refused when the team is
// written (400 naming the entry), on POST and PATCH alike, and nothing is changed.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let teamId: string;

const BAD_MODELS: Array<[string, string]> = [
  ['a line end', 'gpt-4o\n'],
  ['a NUL', 'gpt\u00004o'],
  ['an escape', 'gpt-4o\u001b[31m'],
  ['a C1 control', 'gpt\u00854o'],
  ['only spaces', '   '],
];

const BAD_PROJECTS: Array<[string, string]> = [
  ['a line end', 'project-a\n'],
  ['a tab', 'project\ta'],
  ['a NUL', 'project\u0000a'],
  ['spaces around it', ' project-a '],
  ['non-ASCII letters', 'projet-é'],
  ['65 characters', 'p'.repeat(65)],
];

const create = (body: unknown) => call(gateway, 'POST', '/v1/teams', body, { key: gateway.defaultAdminKey });
const patch = (body: unknown) => call(gateway, 'PATCH', `/v1/teams/${teamId}`, body, { key: gateway.defaultAdminKey });
const permissions = async (): Promise<unknown> =>
  ((await (await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: gateway.defaultAdminKey })).json()) as { byok_permissions: unknown })
    .byok_permissions;

const withModel = (model: string) => ({ byok_permissions: { providers: { openai: { enabled: true, models: ['gpt-4o-mini', model] } } } });
const withProject = (project: string) => ({ byok_permissions: { usage_controls: { require_project_tag: true, allowed_projects: ['project-a', project] } } });

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
  const created = await create({ name: 'Lists', ...withModel('gpt-4o') });
  expect(created.status).toBe(201);
  teamId = ((await created.json()) as { id: string }).id;
});

afterAll(async () => {
  await gateway.stop();
});

test.each(BAD_MODELS)('a model entry with %s is refused on POST and PATCH, and changes nothing', async (_case, model) => {
  const before = await permissions();
  for (const response of [await create({ name: 'T', ...withModel(model) }), await patch(withModel(model))]) {
    const body = await expectSpecError(response, 400, 'invalid_field');
    expect(body.error.param).toBe('byok_permissions.providers.openai.models[1]');
    expect(body.error.message).toContain('control characters');
  }
  expect(await permissions()).toEqual(before);
});

test.each(BAD_PROJECTS)('an allowed project with %s is refused on POST and PATCH, and changes nothing', async (_case, project) => {
  const before = await permissions();
  for (const response of [await create({ name: 'T', ...withProject(project) }), await patch(withProject(project))]) {
    const body = await expectSpecError(response, 400, 'invalid_field');
    expect(body.error.param).toBe('byok_permissions.usage_controls.allowed_projects[1]');
    expect(body.error.message).toContain('X-Project-Tag');
  }
  expect(await permissions()).toEqual(before);
});

test('ordinary entries are kept as written: globs, dots and slashes in models; punctuation and spaces inside tags', async () => {
  const models = ['gpt-4o-mini', 'claude-3-5-*', 'models/gemini-1.5-pro', 'accounts/fireworks/models/llama-v3p1-8b-instruct'];
  const projects = ['project-a', 'Billing Q3', 'team/alpha_2026', 'p'.repeat(64)];
  const response = await patch({
    byok_permissions: { providers: { openai: { enabled: true, models } }, usage_controls: { require_project_tag: true, allowed_projects: projects } },
  });
  expect(response.status).toBe(200);
  expect(await permissions()).toEqual({
    providers: { openai: { enabled: true, models } },
    usage_controls: { require_project_tag: true, allowed_projects: projects },
  });
});
