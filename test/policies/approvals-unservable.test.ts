// No approval for a request another control refuses whatever the decision (QA20): a request carrying
// sensitive content, or one above the team's tokens_per_minute itself, was held 403 approval_required
// (stored, the team's admins paged) and, once approved, refused 400 or 429 on its re-send. The
// refusal now comes first: nothing is stored, no one is paged, no upstream is called.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { AlertEvent } from '../../core/spec/plugin.ts';
import { call } from '../helpers/gateway.ts';
import { recordingAlertChannel, startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

const alerts: AlertEvent[] = [];
let setup: TeamGateway;

// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };
const CARD = '4111 1111 1111 1111';

beforeAll(async () => {
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } }, usage_controls: { block_sensitive_content: true } },
    { extraPlugins: [{ definition: recordingAlertChannel(alerts), source: 'test' }] },
  );
});

afterAll(async () => {
  await setup.stop();
});

const chat = (body: unknown) => call(setup.gateway, 'POST', '/v1/chat/completions', body, { key: setup.memberKey });

async function approvalCount(): Promise<number> {
  const response = await call(setup.gateway, 'GET', '/v1/approvals', undefined, { key: setup.adminKey });
  expect(response.status).toBe(200);
  return ((await response.json()) as { approvals: unknown[] }).approvals.length;
}

async function setRateLimits(rateLimits: Record<string, number> | null): Promise<void> {
  const response = await call(setup.gateway, 'PATCH', `/v1/teams/${setup.teamId}`, { rate_limits: rateLimits }, { key: setup.adminKey });
  expect(response.status).toBe(200);
  await setup.gateway.runtime.services.snapshot.refresh();
}

/** What the refused request must not have left behind: an approval, a page, an upstream call. */
async function expectNothingAsked(run: () => Promise<void>): Promise<void> {
  const approvalsBefore = await approvalCount();
  const pagesBefore = alerts.filter((alert) => alert.type === 'approval_pending').length;
  const upstreamBefore = setup.openai.inferenceRequests().length;
  await run();
  await Bun.sleep(50);
  expect(await approvalCount()).toBe(approvalsBefore);
  expect(alerts.filter((alert) => alert.type === 'approval_pending').length).toBe(pagesBefore);
  expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore);
}

describe('a request no approval could let through is refused before one is asked', () => {
  test('sensitive content above the threshold: 400 sensitive_content_blocked at once', async () => {
    await expectNothingAsked(async () => {
      const response = await chat({ ...BIG, messages: [{ role: 'user', content: `Charge my card ${CARD} for the report.` }] });
      expect(response.status).toBe(400);
      const error = ((await response.json()) as ErrorBody).error;
      expect(error).toMatchObject({ code: 'sensitive_content_blocked', detector: 'payment_card', param: 'messages[0].content' });
      expect(error.approval_id).toBeUndefined();
      expect(JSON.stringify(error)).not.toContain('4111');
    });
    // The same request without the card still waits for an admin.
    const held = await chat(BIG);
    expect(held.status).toBe(403);
    expect(((await held.json()) as ErrorBody).error.code).toBe('approval_required');
  });

  test("a worst case above the team's tokens_per_minute: 429 that no minute can take, at once", async () => {
    await setRateLimits({ tokens_per_minute: 500 });
    try {
      await expectNothingAsked(async () => {
        const response = await chat({ ...BIG, max_tokens: 999 });
        expect(response.status).toBe(429);
        expect(response.headers.get('retry-after')).toBeNull();
        expect(response.headers.get('x-should-retry')).toBe('false');
        const error = ((await response.json()) as ErrorBody).error;
        expect(error).toMatchObject({ code: 'rate_limited', limit_scope: 'team', limit_unit: 'tokens' });
        expect(error.approval_id).toBeUndefined();
        expect(error.message).toContain('no minute can take it');
      });
      // Within the limit, the same threshold still asks.
      await setRateLimits({ tokens_per_minute: 5000 });
      const held = await chat({ ...BIG, max_tokens: 998 });
      expect(held.status).toBe(403);
      expect(((await held.json()) as ErrorBody).error.code).toBe('approval_required');
    } finally {
      await setRateLimits(null);
    }
  });
});
