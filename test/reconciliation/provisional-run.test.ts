// A run of a day that is not final yet does not stand for that day (QA17). A manual
// `POST /v1/reconciliation/run` of today stored a run, and the daily job then skipped the day for good
// (any stored run but an error counted), so drift billed later that day was never checked nor alerted.
// A run checked before the day ended plus `reportDelayHours` is provisional: the job runs the day again.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import { runDailyJobTomorrow, startAlertingHarness, today, type Harness } from './helpers.ts';

let harness: Harness;

beforeAll(async () => {
  harness = await startAlertingHarness();
});

afterAll(async () => {
  await harness.stop();
});

interface Run {
  provider: string;
  status: string;
  alerted?: boolean;
  provisional: boolean;
  totals?: { drift_usd: number };
  drift_usd?: number;
  checked_at?: string;
}

test("a manual run of today is provisional: the next day's job reconciles the day again and alerts the drift billed after it", async () => {
  // By noon, $0.50 the provider billed and Keyway did not: under the $1 alert minimum.
  harness.openai.ledger.addCharge({ model: 'gpt-4o', usd: 0.5 });
  const early = await harness.read(await call(harness.gateway, 'POST', '/v1/reconciliation/run', { day: today(), provider: 'openai' }));
  expect(early.status).toBe(200);
  const [earlyRun] = early.body.runs as Run[];
  expect(earlyRun).toMatchObject({ provider: 'openai', status: 'ok', alerted: false, provisional: true });
  expect(earlyRun?.totals?.drift_usd).toBeCloseTo(0.5, 9);
  // Later that day, $3 more.
  harness.openai.ledger.addCharge({ model: 'gpt-4o', usd: 3 });

  // Reconciled then, after the reports settled: final, so the job's second run leaves it.
  const tomorrowThreeAm = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1, 3);
  await runDailyJobTomorrow(harness);
  expect(harness.alerts.map((alert) => [alert.type, alert.details.day])).toEqual([['reconciliation_drift', today()]]);
  expect(harness.alerts[0]?.details.drift_usd as number).toBeCloseTo(3.5, 9);

  const stored = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/runs?period=today'));
  const [run] = stored.body.runs as Run[];
  expect(run).toMatchObject({ provider: 'openai', status: 'ok', provisional: false });
  expect(run?.drift_usd).toBeCloseTo(3.5, 9);
  expect(Date.parse(String(run?.checked_at))).toBeGreaterThanOrEqual(tomorrowThreeAm);
});
