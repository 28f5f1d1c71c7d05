// KEYWAY_WORKERS=2 with usage written once a minute: a report asked for right after a request shows it,
// whichever worker served the request and whichever answers the report (the seed's script reads
// analytics straight after its team member's call). Requests and reports go over fresh connections, so
// the kernel hands them to either worker.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, freshCall, startTwoWorkers, type GatewayProcess } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_FreshAnalyticsOperatorKey0123456789ab';
const UPSTREAM_KEY = 'sk-proj-FreshAnalyticsUpstreamKey00000000001';

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';

function send(path: string, method = 'GET', body?: unknown): Promise<Response> {
  return freshCall(`${gateway.url}${path}`, OPERATOR_KEY, method, body);
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  // Rows would wait a minute in each worker's queue: only the reports' own flush can show them.
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-workers-analytics', {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: simulator.url },
    extra: { KEYWAY_USAGE_FLUSH_MS: '60000' },
  }));
  await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
  // The key reaches the other worker over the bus; until then it would answer 503.
  await Bun.sleep(1_000);
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM').catch(() => undefined);
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

test('analytics, cost comparison and the export each count the request answered just before, on either worker', async () => {
  const pairs = new Set<string>();
  let served = 0;
  for (let round = 0; round < 40 && pairs.size < 2; round++) {
    const answer = await send('/v1/chat/completions', 'POST', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `round ${round}` }] });
    await answer.arrayBuffer();
    expect(answer.status).toBe(200);
    served++;
    const report = await send('/v1/analytics/byok?period=today');
    const body = (await report.json()) as { total_requests: number };
    expect(report.status).toBe(200);
    expect(body.total_requests).toBe(served);
    const comparison = await send('/v1/analytics/cost-comparison?period=today');
    expect(comparison.status).toBe(200);
    await comparison.arrayBuffer();
    const exported = await send('/v1/billing/export', 'POST', { type: 'all_usage', period: 'today', format: 'json' });
    const rows = ((await exported.json()) as { data: unknown[] }).data;
    expect(exported.status).toBe(200);
    expect(rows).toHaveLength(served);
    // Served by one worker and read on the other: the case the flush across workers is for.
    if (answer.headers.get('x-keyway-worker') !== report.headers.get('x-keyway-worker')) pairs.add('across');
    else pairs.add('same');
  }
  expect(pairs.has('across')).toBe(true);
}, 60_000);

// QA18: GET /v1/usage/me read the store as it stood, so a member's script that checked its spend right
// after a call saw nothing of it for up to a flush interval.
test("GET /v1/usage/me counts the caller's request answered just before, on either worker", async () => {
  const pairs = new Set<string>();
  let served = 0;
  for (let round = 0; round < 40 && pairs.size < 2; round++) {
    const answer = await freshCall(`${gateway.url}/v1/chat/completions`, adminKey, 'POST', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `me ${round}` }],
    });
    await answer.arrayBuffer();
    expect(answer.status).toBe(200);
    served++;
    const usage = await freshCall(`${gateway.url}/v1/usage/me?period=today`, adminKey, 'GET');
    const body = (await usage.json()) as { totals: { requests: number } };
    expect(usage.status).toBe(200);
    expect(body.totals.requests).toBe(served);
    if (answer.headers.get('x-keyway-worker') !== usage.headers.get('x-keyway-worker')) pairs.add('across');
    else pairs.add('same');
  }
  expect(pairs.has('across')).toBe(true);
}, 60_000);
