// Counting tokens is free (docs/policies.md: "its tokens reach no rate limit, budget or approval"), yet
// QA20 found `/v1/messages/count_tokens` judged as a completion of the key's whole output allowance:
// a Claude Code member of a team with a $0.05 Anthropic budget was refused 402 on its first count (a
// worst case of $0.06), and with require_approval_above $0.01 every count was held 403
// approval_required, stored and paged to the team's admins.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator, type AnthropicSimulatorHandle } from '../simulators/anthropic.ts';

const ANTHROPIC_KEY = 'sk-ant-api03-CountTokensFreeTestKey0123456789abcdefghijAA';
const COUNT = { model: 'claude-3-sonnet-20240229', messages: [{ role: 'user' as const, content: 'How many tokens is this?' }] };

let gateway: TestGateway;
let anthropic: AnthropicSimulatorHandle;
let teamId: string;
let memberKey: string;

beforeAll(async () => {
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url } });
  // The seed's settings: 4,000 output tokens by default, $0.06 of Sonnet output.
  await addProviderKeys(gateway, [{ name: 'anthropic', api_key: ANTHROPIC_KEY, settings: { max_tokens_default: 4000 } }], gateway.defaultAdminKey);
  const created = await call(
    gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Claude Code users',
      byok_permissions: { providers: { anthropic: { max_cost_per_day: 0.05, require_approval_above: 0.01 } } },
      members: [{ email: 'dev@company.com', role: 'developer' }],
    },
    { key: gateway.defaultAdminKey },
  );
  expect(created.status).toBe(201);
  const team = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
  teamId = team.id;
  memberKey = team.members[0]?.api_key ?? '';
});

afterAll(async () => {
  await gateway?.stop();
  await anthropic?.stop();
});

const member = () => new Anthropic({ apiKey: memberKey, baseURL: gateway.url, maxRetries: 0 });

async function pendingApprovals(): Promise<number> {
  const response = await call(gateway, 'GET', '/v1/approvals?status=pending', undefined, { key: gateway.defaultAdminKey });
  return ((await response.json()) as { approvals: unknown[] }).approvals.length;
}

test('a member counts tokens under a budget and an approval threshold its output allowance would cross: served, nothing asked', async () => {
  for (let round = 0; round < 3; round++) {
    const counted = await member().messages.countTokens(COUNT);
    expect(counted.input_tokens).toBeGreaterThan(0);
  }
  expect(await pendingApprovals()).toBe(0);
  const usage = await call(gateway, 'GET', '/v1/usage/me?period=today', undefined, { key: memberKey });
  const budgets = ((await usage.json()) as { budgets: Array<{ provider: string; remaining_usd: number }> }).budgets;
  expect(budgets).toEqual([expect.objectContaining({ provider: 'anthropic', remaining_usd: 0.05 })]);
});

test('a message of the same prompt is still judged on its worst case', async () => {
  const response = await call(gateway, 'POST', '/v1/messages', { ...COUNT, max_tokens: 4000 }, { key: memberKey });
  expect(response.status).toBe(402);
  const small = await call(gateway, 'POST', '/v1/messages', { ...COUNT, max_tokens: 1000 }, { key: memberKey });
  expect(small.status).toBe(403);
  expect(((await small.json()) as { error: { code: string } }).error.code).toBe('approval_required');
  expect(await pendingApprovals()).toBe(1);
  expect(teamId).toMatch(/^team_/);
});
