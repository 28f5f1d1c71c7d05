// A team's model list holds model names and `*` globs: an entry with a space at either end or a control
// character matches no model a request can name (QA20: "gpt-4o-mini ", "gpt-4o\u0000" and "\ngpt-4o"
// were taken with a 201, and the team's members were refused model_not_allowed for the model meant).
// A team stored with such an entry stays editable while a PATCH does not set that provider's models.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let teamId: string;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
  const created = await call(gateway, 'POST', '/v1/teams', { name: 'models' }, { key: gateway.defaultAdminKey });
  expect(created.status).toBe(201);
  teamId = ((await created.json()) as { id: string }).id;
});

afterAll(async () => {
  await gateway.stop();
});

const post = (models: unknown[]) =>
  call(gateway, 'POST', '/v1/teams', { name: 'listed', byok_permissions: { providers: { openai: { models } } } }, { key: gateway.defaultAdminKey });
const patch = (body: unknown) => call(gateway, 'PATCH', `/v1/teams/${teamId}`, body, { key: gateway.defaultAdminKey });

const UNUSABLE = ['gpt-4o-mini ', ' gpt-4o', 'gpt-4o\u0000', '\ngpt-4o', 'gpt\t4o', 'gpt-4o\u0085'];

test.each(UNUSABLE)('a model entry no request can match (%j) is refused on POST and PATCH, naming the entry', async (model) => {
  const param = 'byok_permissions.providers.openai.models[1]';
  const created = await expectSpecError(await post(['gpt-4o', model]), 400, 'invalid_field');
  expect(created.error.param).toBe(param);
  const patched = await expectSpecError(await patch({ byok_permissions: { providers: { openai: { models: ['gpt-4o', model] } } } }), 400, 'invalid_field');
  expect(patched.error.param).toBe(param);
});

test('names, prefixed names and globs are taken', async () => {
  const models = ['gpt-4o', 'claude-haiku-4-5*', 'ft:gpt-4o-mini-2024-07-18:org:suffix:id', 'meta-llama/Llama-3.1-8B-Instruct', '*'];
  const created = await post(models);
  expect(created.status).toBe(201);
  expect((await patch({ byok_permissions: { providers: { openai: { models } } } })).status).toBe(200);
});

test('a team stored with such an entry stays editable, and keeps it, while the patch does not set that list', async () => {
  const legacy = { providers: { openai: { enabled: true, models: ['gpt-4o', 'gpt-4o-mini '] } }, usage_controls: {} };
  await gateway.runtime.services.store.execute('UPDATE teams SET permissions = ? WHERE id = ?', [JSON.stringify(legacy), teamId]);
  await gateway.runtime.services.snapshot.refresh();
  const renamed = await patch({
    name: 'renamed',
    byok_permissions: { providers: { openai: { max_cost_per_day: 5 }, anthropic: { models: ['claude-*'] } }, usage_controls: { allowed_projects: ['p'] } },
  });
  expect(renamed.status).toBe(200);
  const team = (await renamed.json()) as { byok_permissions: { providers: { openai: { models: string[] } } } };
  expect(team.byok_permissions.providers.openai.models).toEqual(['gpt-4o', 'gpt-4o-mini ']);
  // Setting that list holds it to today's grammar.
  await expectSpecError(await patch({ byok_permissions: { providers: { openai: { models: ['gpt-4o-mini '] } } } }), 400, 'invalid_field');
});
