// Four eyes against keys a team's admin member issued (QA: the lead added a developer, was answered
// its key, asked with it above require_approval_above and approved the request itself; re-issuing an
// in-bounds developer's key did the same). A lead never decides a request asked by a key it issued,
// added or re-issued; another admin member that was in the team before the request does, as does an
// account admin or the operator, even for keys they issued themselves.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway } from './team-fixture.ts';

// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };

interface Member {
  id: string;
  email: string;
  api_key: string;
}

let setup: TeamGateway;
/** An admin member the account admin added before any request: the legitimate second pair of eyes. */
let peerKey: string;

beforeAll(async () => {
  setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } });
  peerKey = (
    await issued(await call(setup.gateway, 'POST', `/v1/teams/${setup.teamId}/members`, { email: 'peer@company.com', role: 'admin' }, { key: setup.adminKey }))
  ).api_key;
});

afterAll(async () => {
  await setup.stop();
});

async function issued(response: Response): Promise<Member> {
  const body = (await response.json()) as Member;
  if (response.status !== 201) throw new Error(`expected 201, got ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** `key` undefined: the operator's. */
const addDeveloper = (email: string, key?: string) => call(setup.gateway, 'POST', `/v1/teams/${setup.teamId}/members`, { email, role: 'developer' }, { key });
const reissue = (memberId: string, key: string) => call(setup.gateway, 'POST', `/v1/teams/${setup.teamId}/members/${memberId}/keys`, undefined, { key });
const chat = (key: string, approvalId?: string) =>
  call(setup.gateway, 'POST', '/v1/chat/completions', BIG, { key, headers: approvalId === undefined ? {} : { 'x-approval-id': approvalId } });
const approve = (approvalId: string, key?: string) => call(setup.gateway, 'POST', `/v1/approvals/${approvalId}/approve`, undefined, { key });

async function askedBy(key: string): Promise<string> {
  const refused = await expectSpecError(await chat(key), 403, 'approval_required');
  return String(refused.error.approval_id);
}

async function statusOf(approvalId: string): Promise<string | undefined> {
  const listed = (await (await call(setup.gateway, 'GET', '/v1/approvals', undefined, { key: setup.adminKey })).json()) as {
    approvals: Array<{ id: string; status: string }>;
  };
  return listed.approvals.find((approval) => approval.id === approvalId)?.status;
}

async function servedOnce(key: string, approvalId: string): Promise<void> {
  const upstreamBefore = setup.openai.inferenceRequests().length;
  const served = await chat(key, approvalId);
  expect(served.status).toBe(200);
  await served.text();
  expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore + 1);
}

async function refusedAsIssuer(approvalId: string, key: string): Promise<void> {
  const refused = await expectSpecError(await approve(approvalId, key), 403, 'permission_denied');
  expect(refused.error.message).toContain("a key this key's member issued");
  expect(await statusOf(approvalId)).toBe('pending');
}

describe("a team's admin member never decides a request of a key it issued", () => {
  test('the QA path: the lead adds a developer, asks with its key, and cannot approve; an earlier admin can', async () => {
    const helper = await issued(await addDeveloper('helper@company.com', setup.leadKey));
    expect(helper.api_key).toMatch(/^kw_mk_/);
    const approvalId = await askedBy(helper.api_key);

    await refusedAsIssuer(approvalId, setup.leadKey);
    await expectSpecError(await call(setup.gateway, 'POST', `/v1/approvals/${approvalId}/deny`, undefined, { key: setup.leadKey }), 403, 'permission_denied');
    const upstreamBefore = setup.openai.inferenceRequests().length;
    expect((await expectSpecError(await chat(helper.api_key, approvalId), 403, 'approval_required')).error.approval_status).toBe('pending');
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);

    expect((await approve(approvalId, peerKey)).status).toBe(200);
    await servedOnce(helper.api_key, approvalId);
  });

  test("re-issuing a developer's key hands the lead that key: the lead cannot decide its requests, an account admin can", async () => {
    const developer = await issued(await addDeveloper('reissued@company.com', setup.adminKey));
    // Issued by the account admin, the lead decides its requests as before.
    const before = await askedBy(developer.api_key);
    expect((await approve(before, setup.leadKey)).status).toBe(200);
    await servedOnce(developer.api_key, before);

    const fresh = await issued(await reissue(developer.id, setup.leadKey));
    const approvalId = await askedBy(fresh.api_key);
    await refusedAsIssuer(approvalId, setup.leadKey);
    expect((await approve(approvalId, setup.adminKey)).status).toBe(200);
    await servedOnce(fresh.api_key, approvalId);

    // Once an account admin re-issues it, the lead holds no copy of the key: it decides again.
    const again = await issued(await reissue(developer.id, setup.adminKey));
    const later = await askedBy(again.api_key);
    expect((await approve(later, setup.leadKey)).status).toBe(200);
  });

  test('an account admin and the operator decide requests of keys they issued themselves', async () => {
    const byAdmin = await issued(await addDeveloper('by-admin@company.com', setup.adminKey));
    const fromAdmin = await askedBy(byAdmin.api_key);
    expect((await approve(fromAdmin, setup.adminKey)).status).toBe(200);
    await servedOnce(byAdmin.api_key, fromAdmin);

    // The operator acts on `default`, this team's account.
    const byOperator = await issued(await addDeveloper('by-operator@company.com'));
    const fromOperator = await askedBy(byOperator.api_key);
    expect((await approve(fromOperator)).status).toBe(200);
    await servedOnce(byOperator.api_key, fromOperator);
  });
});
