// The daily job reconciles every finished day without a final run, not only the last one (QA18 "time"
// #2). A gateway down from one night to three days later came back and reconciled only the day before:
// the days in between, traffic and drift included, were never checked nor alerted.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import { startAlertingHarness, today, type Harness } from './helpers.ts';

let harness: Harness;
const DAY_MS = 86_400_000;

beforeAll(async () => {
  harness = await startAlertingHarness();
});

afterAll(async () => {
  await harness.stop();
});

test('back three days later, the job reconciles today and the two days after it, and alerts the drift billed today', async () => {
  // Today the provider billed $3 that Keyway did not record; then the gateway's job does not run until three days later.
  harness.openai.ledger.addCharge({ model: 'gpt-4o', usd: 3 });
  const startOfToday = Date.parse(`${today()}T00:00:00Z`);
  const job = harness.gateway.runtime.plugins.jobs.find((entry) => entry.value.name === 'daily-reconciliation')?.value;
  if (job === undefined) throw new Error('no daily-reconciliation job');
  harness.shiftClock(startOfToday + 3 * DAY_MS + 3 * 3_600_000 - Date.now());
  try {
    await job.run();
  } finally {
    harness.shiftClock(0);
  }
  for (let wait = 0; wait < 100 && harness.alerts.length === 0; wait++) await Bun.sleep(20);

  const days = [0, 1, 2].map((offset) => new Date(startOfToday + offset * DAY_MS).toISOString().slice(0, 10));
  const stored = await harness.read(
    await call(harness.gateway, 'GET', `/v1/reconciliation/runs?start=${days[0]}&end=${new Date(startOfToday + 3 * DAY_MS).toISOString().slice(0, 10)}`),
  );
  expect(stored.status).toBe(200);
  const runs = stored.body.runs as Array<{ day: string; provider: string; status: string; provisional: boolean; drift_usd: number }>;
  expect(runs.map((run) => [run.day, run.provider, run.status, run.provisional])).toEqual(days.map((day) => [day, 'openai', 'ok', false]));
  expect(runs[0]?.drift_usd).toBeCloseTo(3, 9);
  expect(harness.alerts.map((alert) => [alert.type, alert.details.day])).toEqual([['reconciliation_drift', today()]]);
});
