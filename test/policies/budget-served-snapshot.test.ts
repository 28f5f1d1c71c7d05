// A budget when the provider serves a dated snapshot dearer than the alias the client named: OpenAI
// answered `gpt-4o` with `gpt-4o-2024-05-13` (twice the alias's input rate in the price data) until
// late 2024. The row books the snapshot at its own price, so the reservation must bound every snapshot
// of the model (core/catalog/snapshots.ts), or the cap is overshot by the difference.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { bookedOpenAIToday, startTeamGateway, type TeamGateway, memberSummaryChat } from './team-fixture.ts';

// Twelve calls one at a time, then a burst: a cap a few calls above the twelve, so the burst's last
// admissions are decided by the reservation while the booked cost is the snapshot's (0.004275 without the bound).
const CAP_USD = 0.00425;
let setup: TeamGateway;

beforeAll(async () => {
  setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: CAP_USD } } }, { servedModels: { 'gpt-4o': 'gpt-4o-2024-05-13' } });
});

afterAll(async () => {
  await setup.stop();
});

const chat = (stream: boolean) => memberSummaryChat(setup, stream);

test('requests served by a dearer snapshot of the alias never spend past the cap, one at a time or at once', async () => {
  let served = 0;
  for (let index = 0; index < 12; index++) {
    const response = await chat(index % 2 === 1);
    await response.text();
    if (response.status === 200) served++;
    else expect(response.status).toBe(402);
  }
  const concurrent = await Promise.all(Array.from({ length: 24 }, (_, index) => chat(index % 3 === 0)));
  for (const response of concurrent) {
    await response.text();
    if (response.status === 200) served++;
    else expect(response.status).toBe(402);
  }
  const booked = await bookedOpenAIToday(setup);
  expect(booked.requests).toBe(served);
  expect(served).toBeGreaterThan(0);
  expect(booked.costUsd).toBeLessThanOrEqual(CAP_USD);
  const rows = await setup.gateway.runtime.store.listUsage('default');
  const servedRows = rows.filter((row) => row.status === 200);
  expect(new Set(servedRows.map((row) => row.model))).toEqual(new Set(['gpt-4o-2024-05-13']));
});
