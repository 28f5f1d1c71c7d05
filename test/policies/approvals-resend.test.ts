// The same request re-sent without X-Approval-Id while its approval is still pending (QA17): it is
// answered with that same pending approval (403 approval_required, the same approval_id), instead of a
// new approval and another page to the team's admins each time. Only the same key's same body (as the
// approval binds them) finds it; once it is no longer pending, the next send asks anew.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { AlertEvent } from '../../core/spec/plugin.ts';
import { call } from '../helpers/gateway.ts';
import { recordingAlertChannel, startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

const pages: AlertEvent[] = [];
const recorder = recordingAlertChannel(pages);

let setup: TeamGateway;
// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report, again.' }] };

beforeAll(async () => {
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } },
    { extraPlugins: [{ definition: recorder, source: 'test' }] },
  );
});

afterAll(async () => {
  await setup.stop();
});

async function held(key: string, body: unknown = BIG): Promise<ErrorBody['error']> {
  const response = await call(setup.gateway, 'POST', '/v1/chat/completions', body, { key });
  expect(response.status).toBe(403);
  const { error } = (await response.json()) as ErrorBody;
  expect(error.code).toBe('approval_required');
  return error;
}

async function pendingApprovals(): Promise<Array<{ id: string }>> {
  const response = await call(setup.gateway, 'GET', '/v1/approvals?status=pending', undefined, { key: setup.adminKey });
  return ((await response.json()) as { approvals: Array<{ id: string }> }).approvals;
}

/** The approval_pending alerts delivered for this approval, once the background delivery had its time. */
async function pagesFor(approvalId: string): Promise<number> {
  await Bun.sleep(200);
  return pages.filter((page) => page.type === 'approval_pending' && page.message.includes(approvalId)).length;
}

test('re-sending the same body while its approval is pending answers that approval again, and pages no one again', async () => {
  const first = await held(setup.memberKey);
  const id = String(first.approval_id);
  expect(await pagesFor(id)).toBe(1);

  const again = await held(setup.memberKey);
  expect(again).toMatchObject({ approval_id: id, approval_status: 'pending', expires_at: first.expires_at, worst_case_usd: first.worst_case_usd });
  expect(again.message).toContain(`already waits for approval ${id}`);
  expect(again.message).toContain(`X-Approval-Id: ${id}`);
  // Streamed, the same request (delivered another way): the same approval.
  expect((await held(setup.memberKey, { ...BIG, stream: true })).approval_id).toBe(id);
  expect((await pendingApprovals()).map((approval) => approval.id)).toEqual([id]);
  expect(await pagesFor(id)).toBe(1);

  // Another key's same body is its own request: an approval binds the key that asked.
  const lead = await held(setup.leadKey);
  expect(lead.approval_id).not.toBe(id);

  // Once decided, the next send without the header asks anew.
  expect((await call(setup.gateway, 'POST', `/v1/approvals/${id}/deny`, undefined, { key: setup.adminKey })).status).toBe(200);
  const fresh = await held(setup.memberKey);
  expect(fresh.approval_id).not.toBe(id);
  expect(fresh.message).not.toContain('already waits');
  expect(await pagesFor(String(fresh.approval_id))).toBe(1);
});
