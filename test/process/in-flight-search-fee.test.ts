// QA18: a Perplexity Sonar request in flight when its gateway is SIGKILLed is booked at the next start
// at Keyway's estimate (gateway_stopped). Perplexity searched before it answered and bills the request
// fee. The replayed row used to carry the tokens alone; it now adds the fee at Perplexity's default
// depth (`low`), because the journal keeps no request body to say which depth was asked for.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { price } from '../accounting/booking.ts';
import { dataFolderEnv, FROM_SOURCE, startGatewayProcess, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'pplx-InFlightSearchFeeKey000000000000001';
const OPERATOR_KEY = 'kw_op_InFlightSearchFeeOperatorKey0123456';
let simulator: SimulatorHandle;
let directory: string;

beforeAll(() => {
  simulator = startPerplexitySimulator({ apiKeys: [UPSTREAM_KEY] });
  directory = mkdtempSync(join(tmpdir(), 'keyway-in-flight-search-fee-'));
});

afterAll(async () => {
  await simulator.stop();
  rmSync(directory, { recursive: true, force: true });
});

function gatewayEnv(): Record<string, string> {
  // Rows stay in the journal until a flush a minute away: the replay is all that writes them.
  return dataFolderEnv(directory, { operatorKey: OPERATOR_KEY, extra: { KEYWAY_PERPLEXITY_BASE_URL: simulator.url, KEYWAY_USAGE_FLUSH_MS: '60000' } });
}

test('a Sonar call in flight at SIGKILL is booked with the request fee at the next start', async () => {
  let gateway: GatewayProcess | undefined = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv() });
  try {
    const added = await fetch(`${gateway.url}/v1/providers/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ providers: [{ name: 'perplexity', api_key: UPSTREAM_KEY }] }),
    });
    expect(added.status).toBe(201);
    simulator.reset();
    simulator.inject({ kind: 'delay', delayMs: 60_000 });
    const pending = fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': 'req_sonar_in_flight' },
      body: JSON.stringify({ model: 'sonar', messages: [{ role: 'user', content: 'What happened in the markets today?' }] }),
    }).catch(() => undefined);
    for (let waited = 0; simulator.inferenceRequests().length < 1 && waited < 10_000; waited += 10) await Bun.sleep(10);
    // The open mark is journaled at the next tick, in the journal's group write: wait for its file.
    const journal = join(directory, 'usage-journal');
    const written = () => readdirSync(journal, { recursive: true }).some((name) => String(name).endsWith('.jsonl'));
    for (let waited = 0; !written() && waited < 10_000; waited += 20) await Bun.sleep(20);
    expect(written()).toBe(true);
    gateway.process.kill('SIGKILL');
    await gateway.waitForExit();
    gateway = undefined;
    await pending;

    gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv() });
    const database = new Database(join(directory, 'keyway.db'), { readonly: true });
    let row: { error_code: string; usage_estimated: number; input_tokens: number; output_tokens: number; cost_usd: number } | undefined;
    try {
      row = database
        .query("SELECT error_code, usage_estimated, input_tokens, output_tokens, cost_usd FROM usage_records WHERE request_id = 'req_sonar_in_flight'")
        .get() as typeof row;
    } finally {
      database.close();
    }
    expect(row).toMatchObject({ error_code: 'gateway_stopped', usage_estimated: 1, output_tokens: 0 });
    const rates = price('perplexity/sonar');
    const fee = (rates.search_context_cost_per_query as Record<string, number>).search_context_size_low as number;
    const tokens = (row?.input_tokens ?? 0) * rates.input_cost_per_token;
    expect(row?.cost_usd as number).toBeCloseTo(tokens + fee, 9);
  } finally {
    await gateway?.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);
