// GET /v1/providers/health under KEYWAY_WORKERS=2: whichever worker answers, the figures (requests,
// success rates, latencies) are the instance's, both workers' windows combined; `workers` says whose
// figures the answer holds. QA: right after one 429 on worker 1, worker 1 said success_rate 0 and
// requests 1, worker 2 success_rate 100 and requests 2. A stuck worker is left out after the primary's
// timeout and named, never waited for.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, logLines, startTwoWorkers, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-WorkersHealthUpstreamKey0000000001';
const OPERATOR_KEY = 'kw_op_WorkersHealthOperatorKey0123456789abc';
/** The primary's gather timeout (core/cluster/ipc-gather.ts). */
const GATHER_TIMEOUT_MS = 2_000;

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
/** Upstream calls made, by the worker that made them. */
const calls = new Map<string, number>([
  ['1', 0],
  ['2', 0],
]);
/** The worker whose call met the 429. */
let limitedOn = '';

interface ProviderReport {
  name: string;
  requests: number;
  success_rate: number;
  latency_ms: number | null;
  latency_p95_ms: number | null;
  keys: Array<{ key_id: string; success_rate: number; latency_ms: number | null; status: string }>;
}

interface HealthAnswer {
  worker: string;
  status: number;
  body: { providers: ProviderReport[]; workers?: { counted: number[]; left_out: number[] } };
}

/** A request on a connection of its own, so the kernel may hand it to either worker. */
function send(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.url}${path}`, {
    ...init,
    keepalive: false,
    headers: { connection: 'close', authorization: `Bearer ${OPERATOR_KEY}`, ...(init.headers as Record<string, string>) },
  });
}

/** One chat; counts the upstream calls it made on the worker that answered it. */
async function chat(index: number): Promise<{ worker: string; status: number }> {
  const before = simulator.inferenceRequests().length;
  const response = await send('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `health ${index}` }] }),
  });
  await response.arrayBuffer();
  const worker = response.headers.get('x-keyway-worker') ?? '';
  calls.set(worker, (calls.get(worker) ?? 0) + simulator.inferenceRequests().length - before);
  return { worker, status: response.status };
}

async function health(timeoutMs = 10_000): Promise<HealthAnswer & { tookMs: number }> {
  const started = performance.now();
  const response = await send('/v1/providers/health', { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await response.json()) as HealthAnswer['body'];
  return { worker: response.headers.get('x-keyway-worker') ?? '', status: response.status, body, tookMs: performance.now() - started };
}

function workerPid(index: number): number {
  const line = logLines(gateway.stdout()).findLast((candidate) => candidate.msg === `worker ${index} listening`);
  return line?.pid as number;
}

const rounded = (value: number): number => Math.round(value * 100) / 100;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  ({ gateway, directory } = await startTwoWorkers('keyway-workers-health', { operatorKey: OPERATOR_KEY, upstreams: { openai: simulator.url } }));
  await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
  // The key reaches the other worker over the bus within a second; until then it would answer 400.
  await Bun.sleep(1_000);
  for (let index = 0; index < 6 || (((calls.get('1') ?? 0) < 2 || (calls.get('2') ?? 0) < 2) && index < 200); index += 1) {
    expect((await chat(index)).status).toBe(200);
  }
  // One 429 from the provider, on whichever worker gets the next call.
  simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 1 });
  limitedOn = (await chat(1_000)).worker;
}, 60_000);

afterAll(async () => {
  try {
    process.kill(workerPid(2), 'SIGCONT');
  } catch {
    // Gone already.
  }
  await gateway?.stop('SIGTERM', 30_000).catch(() => gateway.stop('SIGKILL'));
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('GET /v1/providers/health with KEYWAY_WORKERS=2', () => {
  test("after a 429 on one worker, every worker's answer counts both workers' calls: requests summed, the success rate recomputed", async () => {
    const total = (calls.get('1') ?? 0) + (calls.get('2') ?? 0);
    expect(total).toBe(simulator.inferenceRequests().length);
    expect(['1', '2']).toContain(limitedOn);
    const expectedRate = rounded(((total - 1) / total) * 100);
    const answeredBy = new Set<string>();
    for (let attempt = 0; attempt < 60 && (attempt < 4 || answeredBy.size < 2); attempt += 1) {
      const answer = await health();
      expect(answer.status).toBe(200);
      answeredBy.add(answer.worker);
      const openai = answer.body.providers.find((provider) => provider.name === 'openai');
      expect({ worker: answer.worker, requests: openai?.requests, success_rate: openai?.success_rate }).toEqual({
        worker: answer.worker,
        requests: total,
        success_rate: expectedRate,
      });
      expect(openai?.keys.map((key) => key.success_rate)).toEqual([expectedRate]);
      expect(openai?.latency_ms).toEqual(expect.any(Number));
      expect(openai?.keys[0]?.latency_ms).toEqual(expect.any(Number));
      expect(answer.body.workers).toEqual({ counted: [1, 2], left_out: [] });
    }
    expect([...answeredBy].sort()).toEqual(['1', '2']);
  }, 60_000);

  test("a stuck worker is left out after the timeout and named; the answer holds the other worker's figures", async () => {
    process.kill(workerPid(2), 'SIGSTOP');
    try {
      let answer: Awaited<ReturnType<typeof health>> | undefined;
      // A connection the kernel hands to the stopped worker waits: try again on another one.
      for (let attempt = 0; attempt < 20 && answer === undefined; attempt += 1) {
        answer = await health(GATHER_TIMEOUT_MS + 4_000).catch(() => undefined);
      }
      if (answer === undefined) throw new Error('no health answer reached worker 1');
      expect(answer.worker).toBe('1');
      // No bound on how long it took: the first question waits out the timeout, and once the primary
      // marks the worker unresponsive (a missed heartbeat) the next ones do not wait for it at all.
      expect(answer.body.workers).toEqual({ counted: [1], left_out: [2] });
      const own = calls.get('1') ?? 0;
      const failures = limitedOn === '1' ? 1 : 0;
      const openai = answer.body.providers.find((provider) => provider.name === 'openai');
      expect({ requests: openai?.requests, success_rate: openai?.success_rate }).toEqual({
        requests: own,
        success_rate: rounded(((own - failures) / own) * 100),
      });
    } finally {
      process.kill(workerPid(2), 'SIGCONT');
    }
  }, 60_000);
});
