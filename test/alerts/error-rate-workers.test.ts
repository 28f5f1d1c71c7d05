// An error_rate alert judges the whole account's traffic, not the traffic of the worker that holds the
// alert job's lease: KEYWAY_WORKERS=2 as an operator runs it, failing calls spread over both workers,
// and the event counts every one of them. With the windows of one worker only, neither worker alone
// reaches min_requests, so nothing would fire.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { freshCall, startTwoWorkers, type GatewayProcess } from '../process/process-helpers.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const UPSTREAM_KEY = 'sk-proj-ErrorRateWorkersUpstreamKey00000001';
const OPERATOR_KEY = 'kw_op_ErrorRateWorkersOperatorKey0123456789';
/** Every request the test sends, and the alert's min_requests: only the two workers' counts together reach it. */
const REQUESTS = 34;

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';

/** One request on a connection of its own, so the kernel may hand it to either worker. */
function send(path: string, body?: unknown): Promise<Response> {
  return freshCall(`${gateway.url}${path}`, adminKey, body === undefined ? 'GET' : 'POST', body);
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-error-rate-workers', {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: simulator.url },
    extra: { KEYWAY_ALERTS_INTERVAL_MS: '200' },
  }));
  expect((await send('/v1/providers/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_KEY }] })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM').catch(() => undefined);
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

interface AlertEvent {
  type: string;
  subject: string;
  message: string;
  details: { requests: number; errors: number; error_rate_percent: number };
}

test('KEYWAY_WORKERS=2: error_rate counts the failures both workers served', async () => {
  const created = await send('/v1/alerts', {
    type: 'error_rate',
    provider: 'openai',
    threshold: 50,
    min_requests: REQUESTS,
    notify: ['ops@company.com'],
  });
  expect(created.status).toBe(201);
  simulator.setSticky({ kind: 'server_error' });
  const byWorker = new Map<string, number>();
  for (let count = 0; count < REQUESTS; count++) {
    const response = await send('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] });
    await response.arrayBuffer();
    expect(response.status).toBeGreaterThanOrEqual(500);
    const worker = response.headers.get('x-keyway-worker') ?? '';
    byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1);
  }
  // Both workers served some: neither alone saw every request.
  expect([...byWorker.keys()].sort()).toEqual(['1', '2']);
  let event: AlertEvent | undefined;
  const deadline = performance.now() + 10_000;
  while (event === undefined && performance.now() < deadline) {
    const listed = (await (await send('/v1/alerts/events?type=error_rate')).json()) as { events: AlertEvent[] };
    event = listed.events[0];
    if (event === undefined) await Bun.sleep(100);
  }
  expect(event, `no error_rate event; requests per worker: ${JSON.stringify([...byWorker])}`).toBeDefined();
  expect(event?.subject).toBe('openai');
  expect(event?.details).toMatchObject({ requests: REQUESTS, errors: REQUESTS, error_rate_percent: 100 });
  expect(event?.message).toContain(`(${REQUESTS} of ${REQUESTS})`);
}, 60_000);
