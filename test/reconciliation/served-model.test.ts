// Calls to an alias reconcile: Keyway books the dated name the provider served, which is the name the
// providers' reports use, so the alias leaves no `missing_at_provider` row and the dated model no drift.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, flushUsage } from '../helpers/gateway.ts';
import { ANTHROPIC_SIM_ADMIN_KEY } from '../simulators/anthropic.ts';
import { OPENAI_SIM_ADMIN_KEY } from '../simulators/openai.ts';
import { ANTHROPIC_KEY, chat, messages, OPENAI_KEY, startHarness, type Harness } from './helpers.ts';

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ openai: { servedModels: { 'gpt-4o': 'gpt-4o-2024-08-06' } } });
  await addProviderKeys(harness.gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'anthropic', api_key: ANTHROPIC_KEY },
  ]);
  for (const [provider, adminKey] of [
    ['openai', OPENAI_SIM_ADMIN_KEY],
    ['anthropic', ANTHROPIC_SIM_ADMIN_KEY],
  ] as const) {
    const answer = await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider, admin_key: adminKey });
    expect(answer.status).toBe(200);
  }
  await chat(harness, 'claude-sonnet-4-5', 'An alias through the OpenAI dialect.');
  await chat(harness, 'claude-sonnet-4-5', 'Streamed.', { stream: true });
  await messages(harness, 'claude-sonnet-4-5', 'An alias through the Messages API.', false);
  await messages(harness, 'claude-sonnet-4-5', 'Streamed.', true);
  await chat(harness, 'gpt-4o', 'OpenAI answers gpt-4o as a dated model.');
  await chat(harness, 'gpt-4o', 'Streamed.', { stream: true });
  await messages(harness, 'gpt-4o', 'Through the Messages API.', true);
  await flushUsage(harness.gateway);
});

afterAll(async () => {
  await harness?.stop();
});

test('an alias reconciles under the dated name the provider served: matched, drift 0, no missing_at_provider', async () => {
  const answer = await harness.read(await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?period=today'));
  expect(answer.status).toBe(200);
  const rows = answer.body.rows as Array<{ provider: string; model: string; status: string; drift_usd: number; keyway_cost_usd: number }>;
  expect(rows.map((row) => [`${row.provider}/${row.model}`, row.status, row.drift_usd]).sort()).toEqual([
    ['anthropic/claude-sonnet-4-5-20250929', 'matched', 0],
    ['openai/gpt-4o-2024-08-06', 'matched', 0],
  ]);
  for (const row of rows) expect(row.keyway_cost_usd).toBeGreaterThan(0);
});
