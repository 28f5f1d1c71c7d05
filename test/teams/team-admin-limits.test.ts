// A team's admin member (the "lead") cannot issue keys more powerful or less restricted than its own
// (QA: a lead lifted four-eyes approval and the limits the account admin set on members by adding
// members). In an account of its own, the account admin makes a team whose lead and developer belong to
// `staging`, the lead reachable from loopback only; the account has a production-only and a staging
// OpenAI key. The lead adds developers and viewers of its own environment, within its addresses, and no
// admins; it re-issues only keys it could have added; an admin added after a request never decides it.
// The account admin keeps full power, and an unrestricted admin member adds as before.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const PRODUCTION_KEY = 'sk-proj-LeadLimitsProductionOnly0000000001';
const STAGING_KEY = 'sk-proj-LeadLimitsStagingOnly000000000001';
const LEAD_IPS = ['127.0.0.0/8', '::1'];
// gpt-4o with max_tokens 1000 may cost about $0.01: above the team's $0.005 approval threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };
const SMALL = { ...BIG, max_tokens: 10 };

interface Member {
  id: string;
  email: string;
  role: string;
  api_key?: string;
  environment?: string;
  allowed_ips?: string[];
}

let gateway: TestGateway;
let openai: SimulatorHandle;
let accountAdminKey: string;
let teamId: string;
let leadKey: string;
/** An admin member the account admin added with no environment or addresses: a second pair of eyes, unrestricted. */
let peerKey: string;
let peerId: string;
let leadId: string;

const members = async (): Promise<Member[]> =>
  ((await (await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: accountAdminKey })).json()) as { members: Member[] }).members;

async function added(response: Response): Promise<Member> {
  const body = (await response.json()) as Member;
  if (response.status !== 201) throw new Error(`expected 201, got ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

const addMember = (body: Record<string, unknown>, key: string) => call(gateway, 'POST', `/v1/teams/${teamId}/members`, body, { key });
const reissue = (memberId: string, key: string) => call(gateway, 'POST', `/v1/teams/${teamId}/members/${memberId}/keys`, undefined, { key });
const chat = (key: string, body: unknown = SMALL, headers: Record<string, string> = {}) =>
  call(gateway, 'POST', '/v1/chat/completions', body, { key, headers });

/** The provider key the simulator was last called with. */
const lastUpstreamKey = (): string | undefined =>
  openai
    .inferenceRequests()
    .at(-1)
    ?.headers.authorization?.replace(/^Bearer /, '');

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [PRODUCTION_KEY, STAGING_KEY] });
  gateway = await startTestGateway({ probes: false, logLevel: 'warn', env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` } });
  const account = await call(gateway, 'POST', '/v1/accounts', { name: 'Staging Co' });
  accountAdminKey = ((await account.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
  await addProviderKeys(
    gateway,
    [
      { name: 'openai', api_key: PRODUCTION_KEY, environment: 'production' },
      { name: 'openai', api_key: STAGING_KEY, environment: 'staging' },
    ],
    accountAdminKey,
  );
  const response = await call(
    gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Staging Team',
      byok_permissions: { providers: { openai: { max_cost_per_day: 100, require_approval_above: 0.005 } } },
      members: [
        { email: 'lead@s.com', role: 'admin', environment: 'staging', allowed_ips: LEAD_IPS },
        { email: 'dev@s.com', role: 'developer', environment: 'staging' },
        { email: 'peer@s.com', role: 'admin' },
      ],
    },
    { key: accountAdminKey },
  );
  const team = (await response.json()) as { id: string; members: Member[] };
  if (response.status !== 201) throw new Error(`creating the team failed: ${response.status} ${JSON.stringify(team)}`);
  teamId = team.id;
  const byEmail = (email: string) => team.members.find((member) => member.email === email) as Member;
  leadKey = byEmail('lead@s.com').api_key as string;
  leadId = byEmail('lead@s.com').id;
  peerKey = byEmail('peer@s.com').api_key as string;
  peerId = byEmail('peer@s.com').id;
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
});

describe('admin keys: only an account admin adds or re-issues them', () => {
  test('the lead adding an admin member is refused 403, and nothing is added', async () => {
    const before = await members();
    const refused = await expectSpecError(await addMember({ email: 'lead-alt@s.com', role: 'admin' }, leadKey), 403, 'permission_denied');
    expect(refused.error).toMatchObject({ type: 'permission_error', param: 'role' });
    expect(refused.error.message).toContain('only an account admin may add one');
    expect(await members()).toEqual(before);
  });

  test("the lead re-issuing an admin's key, its own or its peer's, is refused 403, and both keys keep working", async () => {
    for (const memberId of [leadId, peerId]) {
      const refused = await expectSpecError(await reissue(memberId, leadKey), 403, 'permission_denied');
      expect(refused.error.message).toContain('is an admin key');
    }
    for (const key of [leadKey, peerKey]) expect((await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key })).status).toBe(200);
  });

  test('the account admin adds an admin member and re-issues its key', async () => {
    const admin = await added(await addMember({ email: 'second-lead@s.com', role: 'admin' }, accountAdminKey));
    expect(admin.role).toBe('admin');
    const again = await added(await reissue(admin.id, accountAdminKey));
    expect(again.api_key).toMatch(/^kw_mk_/);
    expect((await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: again.api_key })).status).toBe(200);
  });
});

describe('four eyes hold against members added to decide', () => {
  test("the lead's request above the threshold is decided by neither the lead, nor a key it adds, nor an admin added after it asked", async () => {
    const asked = await expectSpecError(await chat(leadKey, BIG), 403, 'approval_required');
    const approvalId = String(asked.error.approval_id);
    const approve = (key: string) => call(gateway, 'POST', `/v1/approvals/${approvalId}/approve`, undefined, { key });

    expect((await expectSpecError(await approve(leadKey), 403, 'permission_denied')).error.message).toContain('asked for by this key');
    // The QA path: a second admin key of the lead's own making.
    await expectSpecError(await addMember({ email: 'lead-alt@ap.com', role: 'admin' }, leadKey), 403, 'permission_denied');
    // Whoever adds it, an admin that joined after the request is not the second pair of eyes for it.
    await Bun.sleep(5);
    const late = await added(await addMember({ email: 'late-lead@s.com', role: 'admin' }, accountAdminKey));
    const refused = await expectSpecError(await approve(late.api_key as string), 403, 'permission_denied');
    expect(refused.error.message).toContain("before this key's member joined the team");
    const pending = (await (await call(gateway, 'GET', '/v1/approvals?status=pending', undefined, { key: accountAdminKey })).json()) as {
      approvals: Array<{ id: string }>;
    };
    expect(pending.approvals.map((approval) => approval.id)).toContain(approvalId);

    // The peer, an admin since before the request, decides it; the lead's re-send is served once.
    expect((await approve(peerKey)).status).toBe(200);
    const served = await chat(leadKey, BIG, { 'x-approval-id': approvalId });
    expect(served.status).toBe(200);
    await served.text();
    expect(lastUpstreamKey()).toBe(STAGING_KEY);
  });

  test('the account admin still decides any approval, and the late admin decides requests asked after it joined', async () => {
    const first = String((await expectSpecError(await chat(leadKey, BIG), 403, 'approval_required')).error.approval_id);
    expect((await call(gateway, 'POST', `/v1/approvals/${first}/deny`, undefined, { key: accountAdminKey })).status).toBe(200);
    const lateKey = (await added(await reissue((await members()).find((member) => member.email === 'late-lead@s.com')?.id ?? '', accountAdminKey)))
      .api_key as string;
    const second = String((await expectSpecError(await chat(leadKey, BIG), 403, 'approval_required')).error.approval_id);
    expect((await call(gateway, 'POST', `/v1/approvals/${second}/approve`, undefined, { key: lateKey })).status).toBe(200);
  });
});

describe("the lead's environment bounds the members it adds", () => {
  test('another environment is refused 403 naming it, and nothing is added', async () => {
    const refused = await expectSpecError(
      await addMember({ email: 'me-again@s.com', role: 'developer', environment: 'production' }, leadKey),
      403,
      'permission_denied',
    );
    expect(refused.error.param).toBe('environment');
    expect(refused.error.message).toContain("This key belongs to environment 'staging'");
    expect(refused.error.message).toContain("'production' is refused");
    expect((await members()).map((member) => member.email)).not.toContain('me-again@s.com');
  });

  test("a member added without one inherits the lead's, and is served by the staging key only", async () => {
    const member = await added(await addMember({ email: 'quiet@s.com', role: 'developer' }, leadKey));
    expect(member.environment).toBe('staging');
    for (let index = 0; index < 4; index += 1) {
      const response = await chat(member.api_key as string);
      expect(response.status).toBe(200);
      await response.text();
      expect(lastUpstreamKey()).toBe(STAGING_KEY);
    }
    expect((await added(await addMember({ email: 'explicit@s.com', role: 'viewer', environment: 'staging' }, leadKey))).environment).toBe('staging');
  });

  test('removing a member and adding it again is held to the same rule', async () => {
    const member = (await members()).find((candidate) => candidate.email === 'quiet@s.com') as Member;
    expect((await call(gateway, 'DELETE', `/v1/teams/${teamId}/members/${member.id}`, undefined, { key: leadKey })).status).toBe(204);
    await expectSpecError(await addMember({ email: 'quiet@s.com', role: 'developer', environment: 'production' }, leadKey), 403, 'permission_denied');
  });

  test("the lead cannot re-issue a key of another environment, or of none; its own environment's it can", async () => {
    const production = await added(await addMember({ email: 'prod-dev@s.com', role: 'developer', environment: 'production' }, accountAdminKey));
    const unbound = await added(await addMember({ email: 'any-env@s.com', role: 'developer', allowed_ips: ['127.0.0.1'] }, accountAdminKey));
    expect((await expectSpecError(await reissue(production.id, leadKey), 403, 'permission_denied')).error.message).toContain(
      "belongs to environment 'production', and this key to 'staging'",
    );
    expect((await expectSpecError(await reissue(unbound.id, leadKey), 403, 'permission_denied')).error.message).toContain(
      'may use provider keys of every environment',
    );
    // The refused re-issues changed nothing: the production member's key still works, on the production key.
    const response = await chat(production.api_key as string);
    expect(response.status).toBe(200);
    await response.text();
    expect(lastUpstreamKey()).toBe(PRODUCTION_KEY);

    const own = await added(await addMember({ email: 'mine@s.com', role: 'developer' }, leadKey));
    const reissued = await added(await reissue(own.id, leadKey));
    expect(reissued).toMatchObject({ environment: 'staging', allowed_ips: LEAD_IPS });
    expect((await added(await reissue(production.id, accountAdminKey))).environment).toBe('production');
  });
});

describe("the lead's allowed_ips bound the members it adds", () => {
  test('a member added without allowed_ips inherits the list; one within it is taken as given', async () => {
    expect((await added(await addMember({ email: 'inherits@s.com', role: 'developer' }, leadKey))).allowed_ips).toEqual(LEAD_IPS);
    expect(
      (await added(await addMember({ email: 'narrow@s.com', role: 'developer', allowed_ips: ['127.0.0.1', '127.9.0.0/16'] }, leadKey))).allowed_ips,
    ).toEqual(['127.0.0.1', '127.9.0.0/16']);
  });

  test.each([
    ['another network', ['10.0.0.0/8'], 'allowed_ips[0]'],
    ['a wider range', ['127.0.0.0/7'], 'allowed_ips[0]'],
    ['one entry outside among others inside', ['::1', '198.51.100.7'], 'allowed_ips[1]'],
    ['every address (an empty list)', [], 'allowed_ips'],
  ])('%s: 403 naming the entry, and nothing is added', async (_label, allowedIps, param) => {
    const email = `wide-${param.length}-${allowedIps.length}@s.com`;
    const refused = await expectSpecError(await addMember({ email, role: 'developer', allowed_ips: allowedIps }, leadKey), 403, 'permission_denied');
    expect(refused.error.param).toBe(param);
    expect(refused.error.message).toContain('127.0.0.0/8, ::1 only');
    expect((await members()).map((member) => member.email)).not.toContain(email);
  });

  test('the lead cannot re-issue a key reachable from more addresses than its own', async () => {
    const anywhere = await added(await addMember({ email: 'anywhere@s.com', role: 'developer', environment: 'staging' }, accountAdminKey));
    const office = await added(
      await addMember({ email: 'office@s.com', role: 'developer', environment: 'staging', allowed_ips: ['203.0.113.0/24'] }, accountAdminKey),
    );
    expect((await expectSpecError(await reissue(anywhere.id, leadKey), 403, 'permission_denied')).error.message).toContain('may be used from every address');
    expect((await expectSpecError(await reissue(office.id, leadKey), 403, 'permission_denied')).error.message).toContain(
      "may be used from 203.0.113.0/24, beyond this key's own allowed_ips",
    );
    expect((await added(await reissue(office.id, accountAdminKey))).allowed_ips).toEqual(['203.0.113.0/24']);
  });
});

describe('keys without those limits add as before', () => {
  test('an admin member with no environment or addresses adds a production developer reachable from anywhere', async () => {
    const member = await added(await addMember({ email: 'prod-by-peer@s.com', role: 'developer', environment: 'production' }, peerKey));
    expect(member.environment).toBe('production');
    expect(member.allowed_ips).toBeUndefined();
    // Admins are still the account admin's to add, whatever the admin member's own limits.
    await expectSpecError(await addMember({ email: 'peer-alt@s.com', role: 'admin' }, peerKey), 403, 'permission_denied');
  });
});

describe("a re-issue's body is held to the lead's bounds, as an added member is", () => {
  const reissueWith = (memberId: string, body: Record<string, unknown>, key = leadKey) =>
    call(gateway, 'POST', `/v1/teams/${teamId}/members/${memberId}/keys`, body, { key });

  test('another environment, or none, is refused 403 naming environment; the old key stays', async () => {
    const member = await added(await addMember({ email: 'body-env@s.com', role: 'developer' }, leadKey));
    for (const environment of ['production', null]) {
      const refused = await expectSpecError(await reissueWith(member.id, { environment }), 403, 'permission_denied');
      expect(refused.error.param).toBe('environment');
      expect(refused.error.message).toContain("This key belongs to environment 'staging'");
    }
    const response = await chat(member.api_key as string);
    expect(response.status).toBe(200);
    await response.text();
    // Its own environment is taken (a no-op here).
    expect((await added(await reissueWith(member.id, { environment: 'staging' }))).environment).toBe('staging');
  });

  test.each([
    ['another network', ['10.0.0.0/8'], 'allowed_ips[0]'],
    ['every address (an empty list)', [], 'allowed_ips'],
  ])('allowed_ips reaching %s is refused 403 naming it', async (_label, allowedIps, param) => {
    const member = await added(await addMember({ email: `body-ips-${allowedIps.length}@s.com`, role: 'developer' }, leadKey));
    const refused = await expectSpecError(await reissueWith(member.id, { allowed_ips: allowedIps }), 403, 'permission_denied');
    expect(refused.error.param).toBe(param);
    expect(refused.error.message).toContain('127.0.0.0/8, ::1 only');
    expect((await members()).find((candidate) => candidate.id === member.id)?.allowed_ips).toEqual(LEAD_IPS);
  });

  test('a narrower list is taken; a body can bring a key the lead could not re-issue within its bounds', async () => {
    const member = await added(await addMember({ email: 'body-narrow@s.com', role: 'developer' }, leadKey));
    expect((await added(await reissueWith(member.id, { allowed_ips: ['127.0.0.1'] }))).allowed_ips).toEqual(['127.0.0.1']);
    // A member of no environment: refused without a body (above), re-issued into the lead's environment with one.
    const unbound = await added(await addMember({ email: 'body-unbound@s.com', role: 'developer', allowed_ips: ['127.0.0.1'] }, accountAdminKey));
    await expectSpecError(await reissue(unbound.id, leadKey), 403, 'permission_denied');
    expect((await added(await reissueWith(unbound.id, { environment: 'staging' }))).environment).toBe('staging');
    // An admin's key stays the account admin's to re-issue, whatever the body.
    const refused = await expectSpecError(await reissueWith(peerId, { environment: 'staging', allowed_ips: ['127.0.0.1'] }), 403, 'permission_denied');
    expect(refused.error.message).toContain('is an admin key');
  });
});
