// A request reserved before UTC midnight that ends after it (QA18 "time" #1). Its usage row is booked
// on the day it ends, so that day pays: before, the reservation settled on the old day's counter, the
// new day's counter (seeded at its first request, before that row existed) never saw the cost, and
// the new day served past its cap while GET /v1/usage/me, the export and the 402 disagreed.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, flushUsage } from '../helpers/gateway.ts';
import { type ErrorBody, startTeamGateway, type TeamGateway } from './team-fixture.ts';

// The gateway's clock runs on a day no usage row is booked on (rows keep real time), so each day's
// counter holds exactly what this test spends on it.
const MIDNIGHT = Date.UTC(2031, 0, 1);
const CAP_USD = 0.01;
let offset = 0;
const moveTo = (instant: number): void => {
  offset = instant - Date.now();
};
let setup: TeamGateway;

beforeAll(async () => {
  moveTo(MIDNIGHT - 60_000);
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, models: ['gpt-4o'], max_cost_per_day: CAP_USD } } },
    { clock: { now: () => Date.now() + offset } },
  );
});

afterAll(async () => {
  await setup.stop();
});

// About $0.0027 a request (1,003 prompt tokens and 20 output tokens of gpt-4o); its worst case, $0.0044, fits three times in $0.01.
const chat = () =>
  call(
    setup.gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'word '.repeat(800) }], max_tokens: 20 },
    { key: setup.memberKey },
  );

test('two requests reserved at 23:59:58 and ended after midnight count on the new day, whose budget then refuses what it cannot hold', async () => {
  moveTo(MIDNIGHT - 2_000);
  setup.openai.inject({ kind: 'delay', delayMs: 1_500 }, { kind: 'delay', delayMs: 1_500 });
  const spanning = [chat(), chat()];
  for (let wait = 0; wait < 200 && setup.openai.inferenceRequests().length < 2; wait++) await Bun.sleep(10);
  expect(setup.openai.inferenceRequests().length).toBe(2);

  // The new day's first request seeds its counter before the two spanning requests end.
  moveTo(MIDNIGHT + 1_000);
  expect((await chat()).status).toBe(200);
  expect((await Promise.all(spanning)).map((response) => response.status)).toEqual([200, 200]);
  await flushUsage(setup.gateway);

  // What one request cost, from the export of the rows (booked in real time).
  const exported = await call(
    setup.gateway,
    'POST',
    '/v1/billing/export',
    { type: 'byok_usage', format: 'json', start: new Date(Date.now() - 3_600_000).toISOString(), end: new Date(Date.now() + 60_000).toISOString() },
    { key: setup.adminKey },
  );
  const rows = ((await exported.json()) as { data: Array<{ cost_usd: number; status: number }> }).data.filter((row) => row.status === 200);
  expect(rows.length).toBe(3);
  const each = rows[0]?.cost_usd ?? 0;
  expect(each).toBeGreaterThan(0);

  // Three requests' cost is on the new day: the next worst case does not fit. Before, two more were served.
  let servedAfter = 0;
  let refusal: ErrorBody | undefined;
  for (let attempt = 0; attempt < 4 && refusal === undefined; attempt++) {
    const response = await chat();
    if (response.status === 200) servedAfter++;
    else {
      expect(response.status).toBe(402);
      refusal = (await response.json()) as ErrorBody;
    }
  }
  expect(servedAfter).toBe(0);
  expect(refusal?.error.code).toBe('budget_exceeded');
  expect(refusal?.error.remaining_usd as number).toBeCloseTo(CAP_USD - 3 * each, 9);
  expect(refusal?.error.reset_at).toBe(new Date(MIDNIGHT + 86_400_000).toISOString());
});
