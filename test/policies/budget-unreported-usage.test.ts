// A daily budget against an upstream that reports no usage (an OpenAI-compatible server that ignores
// `stream_options`, a proxy that drops the field): QA14 sent 80 such requests past a budget that
// stopped normal traffic after 12, each booked $0. A served answer is booked at Keyway's estimate, and
// the reservation settles to that cost (the cost-cap policy settles to the booked cost), so the cap
// holds.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import { startUsageRewriter, type UsageRewriter } from '../helpers/usage-rewriter.ts';
import { bookedOpenAIToday, startTeamGateway, type TeamGateway, memberSummaryChat } from './team-fixture.ts';

// About ten honest calls of the request below.
const CAP_USD = 0.002;
let rewriter: UsageRewriter;
let setup: TeamGateway;

beforeAll(async () => {
  rewriter = startUsageRewriter();
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: CAP_USD } } },
    { env: { KEYWAY_OPENAI_BASE_URL: `${rewriter.url}/v1` } },
  );
  rewriter.target = setup.openai.url;
  rewriter.fault = 'missing';
});

afterAll(async () => {
  await setup.stop();
  await rewriter.stop();
});

const chat = (stream: boolean) => memberSummaryChat(setup, stream);

interface UsageMe {
  totals: { requests: number; cost_usd: number };
  budgets: Array<{ provider: string; limit_usd: number; spent_today_usd: number }>;
}

test('answers without usage spend the budget at their estimate until it is spent; the cap holds', async () => {
  let served = 0;
  let refused = 0;
  for (let index = 0; index < 40; index++) {
    const response = await chat(index % 2 === 1);
    await response.text();
    if (response.status === 200) served++;
    else {
      expect(response.status).toBe(402);
      refused++;
    }
  }
  expect(served).toBeGreaterThan(0);
  expect(refused).toBeGreaterThan(0);
  const booked = await bookedOpenAIToday(setup);
  expect(booked.requests).toBe(served);
  expect(booked.costUsd).toBeGreaterThan(0);
  expect(booked.costUsd).toBeLessThanOrEqual(CAP_USD);
  const rows = (await setup.gateway.runtime.store.listUsage('default')).filter((row) => row.status === 200);
  expect(rows).toHaveLength(served);
  for (const row of rows) {
    expect(row.usageEstimated).toBe(true);
    expect(row.costUsd as number).toBeGreaterThan(0);
  }
  // What the member reads: the budget spent by the estimates.
  const response = await call(setup.gateway, 'GET', '/v1/usage/me', undefined, { key: setup.memberKey });
  const usage = (await response.json()) as UsageMe;
  const budget = usage.budgets.find((entry) => entry.provider === 'openai');
  expect(budget?.spent_today_usd as number).toBeCloseTo(booked.costUsd, 6);
});
