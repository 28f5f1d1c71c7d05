// A team's name and its members' emails are shown in the dashboard, exports and alert text: a name that
// is blank once trimmed, or any name or email holding a control character (NUL, a line end, ESC), is
// refused on POST and PATCH as an empty name is (QA qa-teams L1: "   " and "a\u0000b\nc" were 201).
// Spaces around a name are trimmed. A name stored by an older release stays editable.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let teamId: string;

const BAD_NAMES: Array<[string, string]> = [
  ['only spaces', '   '],
  ['only a line end', '\n'],
  ['a NUL', 'a\u0000b'],
  ['a line end', 'Team\nA'],
  ['a tab', 'Team\tA'],
  ['an escape', 'Team\u001b[31mA'],
  ['a DEL', 'Team\u007fA'],
  ['a C1 control', 'Team\u0085A'],
  ['a line separator', 'Team\u2028A'],
  ['only invisible characters', '\u200b\u00a0\u2060'],
  // QA20: characters that show nothing though they are not spaces nor format characters.
  ['only a Hangul filler', '\u3164'],
  ['only a braille blank', '\u2800'],
  ['only a combining grapheme joiner', '\u034f'],
  ['only a combining accent', '\u0301'],
  ['only variation selectors', '\ufe0f\u{e0100}'],
  // QA20: a bidi override reorders the rest of the dashboard or alert line the name is shown on.
  ['a right-to-left override', 'Team\u202eA'],
  ['a bidi isolate', 'Team\u2067A'],
  // QA20: a lone surrogate is not text: it was answered as sent and read back as U+FFFD.
  ['a lone surrogate', 'Team\ud800'],
];

const BAD_EMAILS: Array<[string, string]> = [
  ['a NUL', 'a\u0000b@c.co'],
  ['an escape', 'a\u001b@c.co'],
  ['a DEL', 'a@c.co\u007f'],
  ['a C1 control', 'a\u0085b@c.co'],
];

const create = (body: unknown) => call(gateway, 'POST', '/v1/teams', body, { key: gateway.defaultAdminKey });
const patch = (body: unknown) => call(gateway, 'PATCH', `/v1/teams/${teamId}`, body, { key: gateway.defaultAdminKey });
const teamName = async (): Promise<string> =>
  ((await (await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: gateway.defaultAdminKey })).json()) as { name: string }).name;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
  const created = await create({ name: 'Names' });
  expect(created.status).toBe(201);
  teamId = ((await created.json()) as { id: string }).id;
});

afterAll(async () => {
  await gateway.stop();
});

async function expectRefused(response: Response, param: string): Promise<void> {
  const body = await expectSpecError(response, 400, 'invalid_field');
  expect(body.error.type).toBe('invalid_request_error');
  expect(body.error.param).toBe(param);
}

test.each(BAD_NAMES)('a name with %s is refused on POST and PATCH, and changes nothing', async (_case, name) => {
  await expectRefused(await create({ name }), 'name');
  await expectRefused(await patch({ name }), 'name');
  expect(await teamName()).toBe('Names');
});

test('the refusal says which rule the name broke', async () => {
  const blank = await expectSpecError(await create({ name: '   ' }), 400, 'invalid_field');
  expect(blank.error.message).toContain('blank');
  const control = await expectSpecError(await create({ name: 'a\u0000b' }), 400, 'invalid_field');
  expect(control.error.message).toContain('control characters');
});

test('spaces around a name are trimmed; spaces, accents and emoji inside it are kept', async () => {
  const created = await create({ name: '  Data Science  ' });
  expect(created.status).toBe(201);
  expect(((await created.json()) as { name: string }).name).toBe('Data Science');
  const renamed = await patch({ name: ' Équipe 🚀 Nord ' });
  expect(renamed.status).toBe(200);
  expect(((await renamed.json()) as { name: string }).name).toBe('Équipe 🚀 Nord');
  expect(await teamName()).toBe('Équipe 🚀 Nord');
  await patch({ name: 'Names' });
});

test.each(BAD_EMAILS)('a member email with %s is refused on POST /v1/teams and on adding a member', async (_case, email) => {
  await expectRefused(await create({ name: 'T', members: [{ email, role: 'developer' }] }), 'members[0].email');
  await expectRefused(await call(gateway, 'POST', `/v1/teams/${teamId}/members`, { email, role: 'developer' }, { key: gateway.defaultAdminKey }), 'email');
});

test('a name stored by an older release stays editable: a patch that leaves the name goes through', async () => {
  await gateway.runtime.services.store.execute('UPDATE teams SET name = ? WHERE id = ?', ['   ', teamId]);
  await gateway.runtime.services.snapshot.refresh();
  const budget = await patch({ rate_limits: { requests_per_minute: 100 } });
  expect(budget.status).toBe(200);
  expect(((await budget.json()) as { name: string }).name).toBe('   ');
  await expectRefused(await patch({ name: '\t' }), 'name');
  const renamed = await patch({ name: 'Names' });
  expect(renamed.status).toBe(200);
});
