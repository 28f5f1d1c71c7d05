// A wrong price shows as drift even at low volume: Keyway prices gpt-4.1 at 3e-6/9e-6 (a price file)
// while the provider bills list, 2e-6/8e-6. Two calls drift by a few hundredths of a cent, well inside
// the absolute tolerance ($0.0001) but about 22 % of the bill, so the row is `drift`, with its share.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addProviderKeys, call, flushUsage } from '../helpers/gateway.ts';
import { OPENAI_SIM_ADMIN_KEY } from '../simulators/openai.ts';
import { chat, OPENAI_KEY, startHarness, type Harness } from './helpers.ts';

interface Row {
  provider: string;
  model: string;
  status: string;
  keyway_cost_usd: number;
  provider_cost_usd: number;
  drift_usd: number;
  drift_percent: number | null;
}

const folder = mkdtempSync(join(tmpdir(), 'keyway-reconciliation-prices-'));
let harness: Harness;

beforeAll(async () => {
  const pricesFile = join(folder, 'prices.json');
  writeFileSync(
    pricesFile,
    JSON.stringify({ 'gpt-4.1': { litellm_provider: 'openai', mode: 'chat', input_cost_per_token: 3e-6, output_cost_per_token: 9e-6 } }),
  );
  harness = await startHarness({ env: { KEYWAY_PRICES_FILE: pricesFile } });
  await addProviderKeys(harness.gateway, [{ name: 'openai', api_key: OPENAI_KEY }]);
  expect((await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: OPENAI_SIM_ADMIN_KEY })).status).toBe(200);
  await chat(harness, 'gpt-4.1', 'One.');
  await chat(harness, 'gpt-4.1', 'Two.');
  await flushUsage(harness.gateway);
});

afterAll(async () => {
  await harness?.stop();
  rmSync(folder, { recursive: true, force: true });
});

async function gpt41Row(): Promise<{ row: Row | undefined; body: Record<string, unknown> }> {
  const answer = await harness.read(await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?period=today&provider=openai'));
  expect(answer.status).toBe(200);
  return { row: (answer.body.rows as Row[]).find((row) => row.model === 'gpt-4.1'), body: answer.body };
}

test('a 22 % price discrepancy of a few cents of a cent is drift, reported as a percentage too', async () => {
  const { row, body } = await gpt41Row();
  expect(body).toMatchObject({ match_tolerance_usd: 0.0001, match_tolerance_percent: 1 });
  expect(row?.status).toBe('drift');
  expect(row?.provider_cost_usd).toBeGreaterThan(0);
  expect(Math.abs(row?.drift_usd ?? 0)).toBeLessThan(0.0001);
  // Keyway's price is 1.5× list on input and 1.125× on output: the share lies between 11 % and 34 % of the bill.
  expect(row?.drift_percent).toBeLessThan(-11);
  expect(row?.drift_percent).toBeGreaterThan(-34);
  expect(row?.drift_percent).toBeCloseTo(((row?.drift_usd ?? 0) / (row?.provider_cost_usd ?? 1)) * 100, 3);
});

test('the relative tolerance is a setting beside the absolute one', async () => {
  const saved = await harness.read(await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { match_tolerance_percent: 50 }));
  expect(saved.status).toBe(200);
  expect((saved.body.settings as Record<string, unknown>).match_tolerance_percent).toBe(50);
  const { row, body } = await gpt41Row();
  expect(body.match_tolerance_percent).toBe(50);
  expect(row?.status).toBe('matched');
  const refused = await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { match_tolerance_percent: 101 });
  expect(refused.status).toBe(400);
});
