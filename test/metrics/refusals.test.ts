// Budget and policy refusals through the teams plugin and the cost-cap policy: counted by code,
// booked once each, with no team member's key in the scrape.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, flushUsage } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway, OPENAI_KEY } from '../policies/team-fixture.ts';
import { parseExposition, sumOf, valueOf } from './exposition-parser.ts';

let setup: TeamGateway;

beforeAll(async () => {
  setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 0.01 } } });
});

afterAll(async () => {
  await setup.stop();
});

const chat = (body: Record<string, unknown>) =>
  call(setup.gateway, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], ...body }, { key: setup.memberKey });

test('budget refusals and other policy refusals are counted by code', async () => {
  for (const stream of [false, true]) {
    const refused = await chat({ model: 'gpt-4o', max_tokens: 100_000, stream });
    expect(refused.status).toBe(402);
    await refused.text();
  }
  const unpriced = await chat({ model: 'gpt-unpriced-test' });
  expect(unpriced.status).toBe(403);
  await unpriced.text();
  const served = await chat({ model: 'gpt-4o-mini', max_tokens: 20 });
  expect(served.status).toBe(200);
  await served.text();
  await Bun.sleep(20);
  await flushUsage(setup.gateway);

  const response = await call(setup.gateway, 'GET', '/metrics');
  const text = await response.text();
  const exposition = parseExposition(text);
  expect(valueOf(exposition, 'keyway_budget_refusals_total')).toBe(2);
  expect(valueOf(exposition, 'keyway_policy_refusals_total', { error_type: 'budget_exceeded' })).toBe(2);
  expect(valueOf(exposition, 'keyway_policy_refusals_total', { error_type: 'model_unpriced' })).toBe(1);
  expect(sumOf(exposition, 'keyway_policy_refusals_total')).toBe(3);
  expect(
    valueOf(exposition, 'keyway_requests_total', {
      endpoint: 'chat',
      gen_ai_provider_name: 'openai',
      gen_ai_request_model: 'gpt-4o',
      status_class: '4xx',
      error_type: 'budget_exceeded',
    }),
  ).toBe(2);
  // A refused request reaches no upstream: no attempt, no upstream error, no token.
  expect(sumOf(exposition, 'keyway_upstream_errors_total')).toBe(0);
  expect(sumOf(exposition, 'keyway_requests_total')).toBe((await setup.gateway.runtime.store.listUsage('default')).length);
  for (const secret of [setup.memberKey, setup.adminKey, OPENAI_KEY]) expect(text).not.toContain(secret);
});
