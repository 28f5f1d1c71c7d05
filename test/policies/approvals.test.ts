// The approval lifecycle end to end: a request above require_approval_above is held (403
// approval_required with approval_id), an admin approves or denies it, the member re-sends the same
// body with X-Approval-Id and it is served exactly once; a different body, a denied, used or expired
// approval are refused; an approved request still respects the budget.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import type { AlertEvent } from '../../core/spec/plugin.ts';
import { approvalsPolicyPlugin } from '../../policies/approvals/index.ts';
import { bodyHash, stableJson } from '../../policies/approvals/records.ts';
import { call } from '../helpers/gateway.ts';
import { recordingAlertChannel, startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

const clock = new ManualClock(Date.UTC(2026, 11, 5, 9));
const alerts: AlertEvent[] = [];
const recorder = recordingAlertChannel(alerts);

let setup: TeamGateway;
// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold. With max_tokens 10, far below.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };
const SMALL = { ...BIG, max_tokens: 10 };

beforeAll(async () => {
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } },
    { clock, extraPlugins: [{ definition: recorder, source: 'test' }] },
  );
});

afterAll(async () => {
  await setup.stop();
});

const chat = (body: unknown, approvalId?: string) =>
  call(setup.gateway, 'POST', '/v1/chat/completions', body, { key: setup.memberKey, headers: approvalId === undefined ? {} : { 'x-approval-id': approvalId } });

async function held(body: unknown = BIG, approvalId?: string): Promise<ErrorBody['error']> {
  const response = await chat(body, approvalId);
  expect(response.status).toBe(403);
  return ((await response.json()) as ErrorBody).error;
}

async function requestApproval(body: unknown = BIG): Promise<string> {
  const error = await held(body);
  expect(error.code).toBe('approval_required');
  expect(typeof error.approval_id).toBe('string');
  return error.approval_id as string;
}

const decide = (id: string, decision: 'approve' | 'deny', key = setup.adminKey) =>
  call(setup.gateway, 'POST', `/v1/approvals/${id}/${decision}`, undefined, { key });

async function listed(status?: string): Promise<Array<Record<string, unknown>>> {
  const response = await call(setup.gateway, 'GET', `/v1/approvals${status === undefined ? '' : `?status=${status}`}`, undefined, { key: setup.adminKey });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { approvals: Array<Record<string, unknown>>; data: Array<Record<string, unknown>> };
  // Under their plural name, as every list; `data` is the same list for older clients.
  expect(body.data).toEqual(body.approvals);
  return body.approvals;
}

describe('approvals', () => {
  test('four eyes: the key that asked cannot decide its own approval, and only the key that asked may use it', async () => {
    const asLead = (approvalId?: string) =>
      call(setup.gateway, 'POST', '/v1/chat/completions', BIG, {
        key: setup.leadKey,
        headers: approvalId === undefined ? {} : { 'x-approval-id': approvalId },
      });
    const asked = (await (await asLead()).json()) as ErrorBody;
    expect(asked.error.code).toBe('approval_required');
    const leadsOwn = asked.error.approval_id as string;
    const self = await decide(leadsOwn, 'approve', setup.leadKey);
    expect(self.status).toBe(403);
    expect(((await self.json()) as ErrorBody).error.code).toBe('permission_denied');
    expect((await listed('pending')).some((approval) => approval.id === leadsOwn)).toBe(true);

    // The member's approval, approved by the team's admin member, cannot be spent by that admin.
    const membersOwn = await requestApproval();
    expect((await decide(membersOwn, 'approve', setup.leadKey)).status).toBe(200);
    const upstreamBefore = setup.openai.inferenceRequests().length;
    const stolen = (await (await asLead(membersOwn)).json()) as ErrorBody;
    expect(stolen.error).toMatchObject({ code: 'approval_required', approval_status: 'other_key' });
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);
    const served = await chat(BIG, membersOwn);
    expect(served.status).toBe(200);
    await served.text();
  });

  test('an approval given for a request serves it streamed too (the same request, delivered another way)', async () => {
    const id = await requestApproval();
    expect((await decide(id, 'approve')).status).toBe(200);
    const streamed = await chat({ ...BIG, stream: true }, id);
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain('data: [DONE]');
    expect((await held(BIG, id)).message).toContain('already used');
  });

  test('below the threshold a request is served without approval', async () => {
    const response = await chat(SMALL);
    expect(response.status).toBe(200);
  });

  test('with both max_tokens and max_completion_tokens, the larger judges the worst case, whichever field holds it', async () => {
    // The translations send max_completion_tokens when both are there and OpenAI gets both: a small
    // max_tokens beside a large max_completion_tokens once skipped the approval (QA12 D1).
    const upstreamBefore = setup.openai.inferenceRequests().length;
    expect((await held({ ...SMALL, max_completion_tokens: 1000 })).code).toBe('approval_required');
    expect((await held({ ...BIG, max_completion_tokens: 10 })).code).toBe('approval_required');
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);
  });

  test('pending → approved → re-sent and served once → a second re-send is refused', async () => {
    const upstreamBefore = setup.openai.inferenceRequests().length;
    const id = await requestApproval();
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);

    const pending = (await listed('pending')).find((approval) => approval.id === id);
    expect(pending).toMatchObject({ id, team_id: setup.teamId, status: 'pending', provider: 'openai', model: 'gpt-4o' });
    expect(pending?.worst_case_usd as number).toBeGreaterThan(0.005);
    expect(pending?.body_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(pending?.expires_at as string) - Date.parse(pending?.created_at as string)).toBe(24 * 3600 * 1000);

    // Still pending: the header alone does not serve it.
    expect((await held(BIG, id)).message).toContain('pending');
    // A member cannot approve, nor list.
    expect((await decide(id, 'approve', setup.memberKey)).status).toBe(403);

    const approved = await decide(id, 'approve');
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ id, status: 'approved' });

    const served = await chat(BIG, id);
    expect(served.status).toBe(200);
    await served.text();
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore + 1);

    const again = await held(BIG, id);
    expect(again.code).toBe('approval_required');
    expect(again.message).toContain('already used');
    expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore + 1);
    expect((await listed('used')).some((approval) => approval.id === id)).toBe(true);
  });

  test('the pending approval alerted the team admins', async () => {
    await Bun.sleep(50);
    const event = alerts.find((alert) => alert.type === 'approval_pending');
    expect(event?.targets).toEqual(['lead@company.com']);
    expect(event?.details.approval_id).toBeDefined();
  });

  test('a different body is refused with a new approval; the old one stays unused', async () => {
    const id = await requestApproval();
    expect((await decide(id, 'approve')).status).toBe(200);
    const other = { ...BIG, messages: [{ role: 'user', content: 'Something else entirely.' }] };
    const mismatch = await held(other, id);
    expect(mismatch.code).toBe('approval_required');
    expect(mismatch.message).toContain('different request body');
    expect(mismatch.approval_id).not.toBe(id);
    expect((await listed('approved')).some((approval) => approval.id === id)).toBe(true);
    const served = await chat(BIG, id);
    expect(served.status).toBe(200);
  });

  test('of concurrent re-sends of one approval, exactly one is served', async () => {
    const id = await requestApproval();
    expect((await decide(id, 'approve')).status).toBe(200);
    const answers = await Promise.all(Array.from({ length: 12 }, () => chat(BIG, id)));
    expect(answers.filter((answer) => answer.status === 200).length).toBe(1);
    expect(answers.filter((answer) => answer.status === 403).length).toBe(11);
  });

  test('denied: re-sending is refused, and a decided approval cannot be decided again', async () => {
    const id = await requestApproval();
    const denied = await decide(id, 'deny');
    expect(denied.status).toBe(200);
    const decision = (await denied.json()) as Record<string, unknown>;
    expect(decision).toMatchObject({ status: 'denied' });
    // The audit entry shows the approval as it was (pending, undecided) and as it is now.
    const audit = (await (await call(setup.gateway, 'GET', '/v1/audit-logs?type=admin&period=today', undefined, { key: setup.adminKey })).json()) as {
      events: Array<{ request_id: string; before: unknown; after: unknown }>;
    };
    const entry = audit.events.find((event) => event.request_id === denied.headers.get('x-request-id'));
    expect(entry?.before).toEqual({ ...decision, status: 'pending', decided_by: null, decided_at: null });
    expect(entry?.after).toEqual(decision);
    expect((await held(BIG, id)).message).toContain('denied');
    expect((await decide(id, 'approve')).status).toBe(409);
    expect((await decide('apr_missing', 'approve')).status).toBe(404);
  });

  test('an approval expires after 24 h: approved or pending, it can no longer be used or decided', async () => {
    const approvedId = await requestApproval();
    expect((await decide(approvedId, 'approve')).status).toBe(200);
    const pendingId = await requestApproval({ ...BIG, max_tokens: 999 });
    clock.advance(24 * 3600 * 1000 + 1);
    const expired = await held(BIG, approvedId);
    expect(expired.message).toContain('expired');
    expect((await decide(pendingId, 'approve')).status).toBe(409);
    const list = await listed('expired');
    expect(list.map((approval) => approval.id)).toEqual(expect.arrayContaining([approvedId, pendingId]));
  });

  test('a pending approval past its expiry, not yet written expired, does not keep the same request from asking anew', async () => {
    // The store keeps one pending approval per request (0003_pending_once); expiry is read on the clock,
    // so the row is still `pending` until a sweep: the new ask writes it expired and takes its place.
    const body = { ...BIG, max_tokens: 998 };
    const first = await requestApproval(body);
    clock.advance(24 * 3600 * 1000 + 1);
    const second = await requestApproval(body);
    expect(second).not.toBe(first);
    const statuses = Object.fromEntries((await listed()).map((approval) => [approval.id, approval.status]));
    expect({ first: statuses[first], second: statuses[second] }).toEqual({ first: 'expired', second: 'pending' });
  });

  test('an approved request still respects the budget; refused, the approval is given back', async () => {
    const id = await requestApproval();
    const worstUsd = (await listed('pending')).find((approval) => approval.id === id)?.worst_case_usd as number;
    expect((await decide(id, 'approve')).status).toBe(200);
    // A cap the worst case fits whole, but not once a small request is spent.
    const tight = await call(
      setup.gateway,
      'PATCH',
      `/v1/teams/${setup.teamId}`,
      { byok_permissions: { providers: { openai: { max_cost_per_day: worstUsd + 0.00001 } } } },
      { key: setup.adminKey },
    );
    expect(tight.status).toBe(200);
    await setup.gateway.runtime.services.snapshot.refresh();
    const small = await chat(SMALL);
    expect(small.status).toBe(200);
    await small.text();
    await Bun.sleep(30);
    const refused = await chat(BIG, id);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as ErrorBody).error.message).toContain('no daily budget left');
    await Bun.sleep(30);
    expect((await listed('approved')).some((approval) => approval.id === id)).toBe(true);
    await call(
      setup.gateway,
      'PATCH',
      `/v1/teams/${setup.teamId}`,
      { byok_permissions: { providers: { openai: { max_cost_per_day: 100 } } } },
      { key: setup.adminKey },
    );
    await setup.gateway.runtime.services.snapshot.refresh();
    expect((await chat(BIG, id)).status).toBe(200);
  });

  test('a worst case above the whole daily budget is 402 at once: no approval is created and no admin alerted', async () => {
    const patch = (providers: Record<string, unknown>) =>
      call(setup.gateway, 'PATCH', `/v1/teams/${setup.teamId}`, { byok_permissions: { providers: { openai: providers } } }, { key: setup.adminKey });
    expect((await patch({ max_cost_per_day: 0.06, require_approval_above: 0.01 })).status).toBe(200);
    await setup.gateway.runtime.services.snapshot.refresh();
    try {
      // QA: gpt-4o with max_tokens 5500 (worst case ~$0.0826) was held for approval, approved, then refused 402.
      const huge = { ...BIG, max_tokens: 5500 };
      const approvalsBefore = (await listed()).length;
      const alertsBefore = alerts.filter((alert) => alert.type === 'approval_pending').length;
      const upstreamBefore = setup.openai.inferenceRequests().length;
      const refused = await chat(huge);
      expect(refused.status).toBe(402);
      expect(refused.headers.get('retry-after')).toBeNull();
      expect(refused.headers.get('x-should-retry')).toBe('false');
      const error = ((await refused.json()) as ErrorBody).error;
      expect(error).toMatchObject({ code: 'budget_exceeded', budget: 'max_cost_per_day', provider: 'openai', limit_usd: 0.06, team_id: setup.teamId });
      expect(error.worst_case_usd as number).toBeGreaterThan(0.06);
      expect(error.approval_id).toBeUndefined();
      expect(error.message).toContain('its worst case is above the whole daily budget');
      expect(error.message).toContain('No approval is asked for');
      expect(error.message).toContain('a lower max_tokens (or max_completion_tokens)');
      // Re-sent with an id, it is the same answer: nothing to redeem.
      expect((await chat(huge, 'apr_whatever')).status).toBe(402);
      await Bun.sleep(50);
      expect((await listed()).length).toBe(approvalsBefore);
      expect(alerts.filter((alert) => alert.type === 'approval_pending').length).toBe(alertsBefore);
      expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);
      // Under the whole cap and above the threshold, it still waits for an admin.
      expect((await held({ ...BIG, max_tokens: 3000 })).code).toBe('approval_required');
    } finally {
      expect((await patch({ max_cost_per_day: 100, require_approval_above: 0.005 })).status).toBe(200);
      await setup.gateway.runtime.services.snapshot.refresh();
    }
  });

  test('the list is for admins, filters by status and rejects an unknown status', async () => {
    expect((await call(setup.gateway, 'GET', '/v1/approvals', undefined, { key: setup.memberKey })).status).toBe(403);
    const all = await listed();
    expect(all.length).toBeGreaterThan(3);
    expect((await call(setup.gateway, 'GET', '/v1/approvals?status=maybe', undefined, { key: setup.adminKey })).status).toBe(400);
  });

  test('the refusal shows a tiny threshold and worst case as dollars, never as exponents', async () => {
    const patch = (above: number) =>
      call(
        setup.gateway,
        'PATCH',
        `/v1/teams/${setup.teamId}`,
        { byok_permissions: { providers: { openai: { require_approval_above: above } } } },
        { key: setup.adminKey },
      );
    expect((await patch(0.0000001)).status).toBe(200);
    try {
      // QA: "require_approval_above of $1e-7", where alerts print $0.0000001.
      const error = await held({ ...SMALL, max_tokens: 1, messages: [{ role: 'user', content: 'Hi' }] });
      expect(error.code).toBe('approval_required');
      expect(error.message).toContain('require_approval_above of $0.0000001.');
      expect(error.message).toMatch(/may cost up to \$0\.0000\d+ on openai/);
      // Amounts only: the approval's random id may hold `3E8` and the like.
      expect(error.message.replace(/apr_\w+/g, 'apr_id')).not.toMatch(/\d[eE][-+]?\d/);
    } finally {
      expect((await patch(0.005)).status).toBe(200);
    }
  });
});

describe('the body hash', () => {
  test('is stable across key order and ignores undefined fields', () => {
    expect(stableJson({ b: 1, a: [{ y: 2, x: undefined, z: null }] })).toBe('{"a":[{"y":2,"z":null}],"b":1}');
    const first = bodyHash({ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 });
    const second = bodyHash({ max_tokens: 5, messages: [{ content: 'x', role: 'user' }], model: 'm' });
    expect(first).toBe(second);
    expect(bodyHash({ model: 'm', messages: [], max_tokens: 6 })).not.toBe(bodyHash({ model: 'm', messages: [], max_tokens: 5 }));
    // How the answer is delivered is not what is asked.
    expect(bodyHash({ model: 'm', messages: [], stream: true, stream_options: { include_usage: true } })).toBe(bodyHash({ model: 'm', messages: [] }));
  });

  test('the plugin declares its migration and routes', () => {
    expect(approvalsPolicyPlugin.kind).toBe('policy');
  });
});
