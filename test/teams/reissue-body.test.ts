// Re-issuing a member's key takes an optional body, checked as every management body is (QA17). The
// route used to ignore any body and act: malformed JSON, an unknown field or a 17 MiB body still revoked
// the old key and answered 201, and {"allowed_ips":["10.0.0.1"],"environment":"staging"} gave a new key
// with none of them. Now the body's allowed_ips and environment become the new key's (and the member's),
// under the rules of a member's on add; a refused body revokes nothing.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

interface Member {
  id: string;
  email: string;
  key_id: string;
  api_key?: string;
  allowed_ips?: string[];
  environment?: string;
}

let gateway: TestGateway;
let teamId: string;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, logLevel: 'warn' });
  const response = await call(gateway, 'POST', '/v1/teams', { name: 'Reissue', members: [] }, { key: gateway.defaultAdminKey });
  teamId = ((await response.json()) as { id: string }).id;
});

afterAll(async () => {
  await gateway.stop();
});

async function addMember(email: string, settings: Record<string, unknown> = {}): Promise<Member> {
  const response = await call(gateway, 'POST', `/v1/teams/${teamId}/members`, { email, role: 'developer', ...settings }, { key: gateway.defaultAdminKey });
  expect(response.status).toBe(201);
  return (await response.json()) as Member;
}

function reissue(member: Member, body?: RequestInit['body'] | Record<string, unknown>): Promise<Response> {
  const path = `/v1/teams/${teamId}/members/${member.id}/keys`;
  // A stream goes as it is, chunked (call() would send it as JSON).
  if (body instanceof ReadableStream)
    return fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${gateway.defaultAdminKey}` }, body });
  return call(gateway, 'POST', path, body, { key: gateway.defaultAdminKey });
}

/** The member as GET /v1/teams/{id} shows it. */
async function stored(member: Member): Promise<Member> {
  const team = (await (await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: gateway.defaultAdminKey })).json()) as { members: Member[] };
  return team.members.find((candidate) => candidate.id === member.id) as Member;
}

/** Whether a member key is still accepted (from loopback, the tests' address). */
const works = async (key: string) => (await call(gateway, 'GET', '/v1/usage/me', undefined, { key })).status === 200;

describe('a refused body revokes nothing', () => {
  const SEVENTEEN_MIB = 17 * 1024 * 1024;
  const refusals: Array<[string, () => RequestInit['body'] | Record<string, unknown>, number, string]> = [
    ['malformed JSON', () => '{not json', 400, 'invalid_json'],
    ['an unknown field', () => ({ allowed_ips: ['127.0.0.1'], role: 'admin' }), 400, 'invalid_field'],
    ['a bad address', () => ({ allowed_ips: ['10.0.0.300'] }), 400, 'invalid_field'],
    ['a bad environment', () => ({ environment: 'Staging!' }), 400, 'invalid_field'],
    ['JSON that is no object', () => '["10.0.0.1"]', 400, 'invalid_field'],
    ['a 17 MiB body with its length declared', () => ' '.repeat(SEVENTEEN_MIB), 413, 'request_too_large'],
    [
      'a 17 MiB body sent chunked',
      () => {
        const piece = new Uint8Array(1024 * 1024).fill(0x20);
        let sent = 0;
        return new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent++ === 17) controller.close();
            else controller.enqueue(piece);
          },
        });
      },
      413,
      'request_too_large',
    ],
  ];

  test.each(refusals)('%s', async (label, body, status, code) => {
    const member = await addMember(`${label.replace(/\W+/g, '-')}@company.com`);
    const refused = await expectSpecError(await reissue(member, body()), status, code);
    if (label === 'a bad environment') expect(refused.error).toMatchObject({ param: 'environment', message: expect.stringContaining('lowercase letters') });
    if (label === 'an unknown field') expect(refused.error.param).toBe('role');
    expect(await works(member.api_key as string)).toBe(true);
    expect((await stored(member)).key_id).toBe(member.key_id);
  });
});

describe('allowed_ips and environment in the body', () => {
  test("become the new key's and the member's; the old key is revoked", async () => {
    const member = await addMember('restricted@company.com');
    const response = await reissue(member, { allowed_ips: ['10.0.0.1'], environment: 'staging' });
    expect(response.status).toBe(201);
    const reissued = (await response.json()) as Member;
    expect(reissued).toMatchObject({ allowed_ips: ['10.0.0.1'], environment: 'staging' });
    expect(await stored(member)).toMatchObject({ key_id: reissued.key_id, allowed_ips: ['10.0.0.1'], environment: 'staging' });
    expect(await works(member.api_key as string)).toBe(false);
    // The new key is held to its list: loopback is not 10.0.0.1.
    await expectSpecError(await call(gateway, 'GET', '/v1/usage/me', undefined, { key: reissued.api_key }), 403, 'ip_not_allowed');

    // No body keeps them; a later body changes only what it names.
    const kept = (await (await reissue(member)).json()) as Member;
    expect(kept).toMatchObject({ allowed_ips: ['10.0.0.1'], environment: 'staging' });
    const widened = (await (await reissue(member, { allowed_ips: ['127.0.0.1', '10.0.0.1'] })).json()) as Member;
    expect(widened).toMatchObject({ allowed_ips: ['127.0.0.1', '10.0.0.1'], environment: 'staging' });
    expect(await works(widened.api_key as string)).toBe(true);
  });

  test('allowed_ips [] allows every address and environment null removes it, as an account admin may', async () => {
    const member = await addMember('lifted@company.com', { allowed_ips: ['10.0.0.1'], environment: 'staging' });
    const response = await reissue(member, { allowed_ips: [], environment: null });
    expect(response.status).toBe(201);
    const reissued = (await response.json()) as Member;
    expect(reissued.allowed_ips).toEqual([]);
    expect(reissued.environment).toBeUndefined();
    expect((await stored(member)).environment).toBeUndefined();
    expect(await works(reissued.api_key as string)).toBe(true);
  });

  test('an empty body or {} is a re-issue without changes', async () => {
    const member = await addMember('plain@company.com', { environment: 'production' });
    for (const body of ['', '{}']) {
      const response = await reissue(member, body);
      expect(response.status).toBe(201);
      expect(((await response.json()) as Member).environment).toBe('production');
    }
  });
});
