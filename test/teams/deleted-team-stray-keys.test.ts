// A team's deletion revoked its members' current keys only. A key of the team that no member pointed at
// any more (concurrent re-issues of a release before QA qa-teams H1 left them; see
// test/process/workers-member-keys.test.ts) survived the deletion and then served with no team rule at
// all, since a deleted team is no team to the policies. The deletion now revokes every key of the team.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, logLevel: 'warn' });
});

afterAll(async () => {
  await gateway.stop();
});

/** Whether a key is still accepted (from loopback, the tests' address). */
const works = async (key: string) => (await call(gateway, 'GET', '/v1/usage/me', undefined, { key })).status === 200;

test("a team's deletion revokes every key of the team, one no member holds any more included", async () => {
  const created = await call(
    gateway,
    'POST',
    '/v1/teams',
    { name: 'Stray key', members: [{ email: 'dev@example.com', role: 'developer' }] },
    { key: gateway.defaultAdminKey },
  );
  expect(created.status).toBe(201);
  const team = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
  const stray = 'kw_mk_StrayMemberKeyOfAnOlderRelease000000000';
  const { credentials } = gateway.runtime.services;
  await gateway.runtime.store.insertGatewayKey({
    id: credentials.randomId('key'),
    accountId: 'default',
    role: 'developer',
    name: 'dev@example.com (Stray key)',
    keyHash: credentials.hashGatewayKey(stray),
    maskedKey: credentials.maskKey(stray),
    teamId: team.id,
    byokAccess: true,
    settings: {},
  });
  await gateway.runtime.services.snapshot.refresh();
  expect(await works(stray)).toBe(true);
  expect((await call(gateway, 'DELETE', `/v1/teams/${team.id}`, undefined, { key: gateway.defaultAdminKey })).status).toBe(204);
  expect({ stray: await works(stray), member: await works(team.members[0]?.api_key ?? '') }).toEqual({ stray: false, member: false });
});
