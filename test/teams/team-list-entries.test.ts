// A team's model allow-list entries are matched against the model a request names, and a model name
// holding a control character is refused on every request (core/wire/request-validation.ts): an entry
// that is blank or holds one is a rule that silently allows nothing, so it is refused when the team is
// written (400 naming the entry), on POST and PATCH alike, and nothing is changed. (Allowed projects:
// project-grammar.test.ts.)

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

const create = (body: unknown) => call(gateway, 'POST', '/v1/teams', body, { key: gateway.defaultAdminKey });
const patch = (body: unknown) => call(gateway, 'PATCH', `/v1/teams/${teamId}`, body, { key: gateway.defaultAdminKey });
const permissions = async (): Promise<unknown> =>
  ((await (await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: gateway.defaultAdminKey })).json()) as { byok_permissions: unknown })
    .byok_permissions;

const withModel = (model: string) => ({ byok_permissions: { providers: { openai: { enabled: true, models: ['gpt-4o-mini', model] } } } });

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

test('ordinary entries are kept as written: globs, dots and slashes', async () => {
  const models = ['gpt-4o-mini', 'claude-3-5-*', 'models/gemini-1.5-pro', 'accounts/fireworks/models/llama-v3p1-8b-instruct'];
  const response = await patch({ byok_permissions: { providers: { openai: { enabled: true, models } } } });
  expect(response.status).toBe(200);
  expect(((await permissions()) as { providers: unknown }).providers).toEqual({ openai: { enabled: true, models } });
});
