// GET /metrics under KEYWAY_WORKERS=2 as Prometheus scrapes it: one target, the port. Whichever worker
// a scrape reaches, the answer holds both workers' samples, each under its own `worker` label, as one
// valid exposition; a stuck worker is named and left out after the primary's timeout, and once the
// primary found it silent (a missed heartbeat) it is not waited for at all.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { parseExposition, sumOf, valueOf, type Exposition } from '../metrics/exposition-parser.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, logLines, startTwoWorkers, until, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-WorkersMetricsUpstreamKey000000001';
const OPERATOR_KEY = 'kw_op_WorkersMetricsOperatorKey0123456789ab';
/** The primary's gather timeout (core/cluster/ipc-gather.ts). */
const GATHER_TIMEOUT_MS = 2_000;

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
/** Chat requests answered, by the worker that answered them. */
const answered = new Map<string, number>([
  ['1', 0],
  ['2', 0],
]);

/** A request on a connection of its own, so the kernel may hand it to either worker. */
function send(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.url}${path}`, { ...init, keepalive: false, headers: { connection: 'close', ...(init.headers as Record<string, string>) } });
}

async function chat(index: number): Promise<void> {
  const response = await send('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `count me ${index}` }] }),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  const worker = response.headers.get('x-keyway-worker') ?? '';
  answered.set(worker, (answered.get(worker) ?? 0) + 1);
}

async function scrape(timeoutMs = 10_000): Promise<{ worker: string; text: string; exposition: Exposition; tookMs: number }> {
  const started = performance.now();
  const response = await send('/metrics', { headers: { authorization: `Bearer ${OPERATOR_KEY}` }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  expect(response.status).toBe(200);
  return { worker: response.headers.get('x-keyway-worker') ?? '', text, exposition: parseExposition(text), tookMs: performance.now() - started };
}

function workerPid(index: number): number {
  const line = logLines(gateway.stdout()).findLast((candidate) => candidate.msg === `worker ${index} listening`);
  return line?.pid as number;
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  ({ gateway, directory } = await startTwoWorkers('keyway-workers-metrics', {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: simulator.url },
    // The stopped worker must outlive the test to come back (its replacement is workers-watchdog.test.ts's).
    extra: { KEYWAY_WORKER_TIMEOUT_MS: '0' },
  }));
  await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
  // The key reaches the other worker over the bus within a second; until then it would answer 400.
  await Bun.sleep(1_000);
  for (let index = 0; index < 20 || (((answered.get('1') ?? 0) === 0 || (answered.get('2') ?? 0) === 0) && index < 200); index += 1) await chat(index);
}, 60_000);

afterAll(async () => {
  for (const index of [1, 2]) {
    try {
      process.kill(workerPid(index), 'SIGCONT');
    } catch {
      // Gone already.
    }
  }
  await gateway?.stop('SIGTERM', 30_000).catch(() => gateway.stop('SIGKILL'));
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('GET /metrics with KEYWAY_WORKERS=2', () => {
  test('every scrape, whichever worker answers it, holds both workers: one valid exposition, the requests summed exactly', async () => {
    expect(answered.get('1')).toBeGreaterThan(0);
    expect(answered.get('2')).toBeGreaterThan(0);
    const total = (answered.get('1') ?? 0) + (answered.get('2') ?? 0);
    const scrapedBy = new Set<string>();
    for (let attempt = 0; attempt < 60 && (attempt < 6 || scrapedBy.size < 2); attempt += 1) {
      const { worker, exposition } = await scrape();
      scrapedBy.add(worker);
      // parseExposition refuses a family declared twice or split, and a series given twice.
      for (const each of ['1', '2']) {
        expect({ worker: each, requests: sumOf(exposition, 'keyway_requests_total', { worker: each }) }).toEqual({
          worker: each,
          requests: answered.get(each) as number,
        });
        expect(sumOf(exposition, 'keyway_cost_usd_total', { worker: each })).toBeGreaterThan(0);
        expect(valueOf(exposition, 'keyway_process_start_time_seconds', { worker: each })).toBeGreaterThan(0);
      }
      expect(sumOf(exposition, 'keyway_requests_total')).toBe(total);
      expect(valueOf(exposition, 'keyway_metrics_worker_up', { worker: '1' })).toBe(1);
      expect(valueOf(exposition, 'keyway_metrics_worker_up', { worker: '2' })).toBe(1);
      expect(exposition.families.get('keyway_requests_total')?.type).toBe('counter');
    }
    expect([...scrapedBy].sort()).toEqual(['1', '2']);
  }, 60_000);

  test('a stuck worker is left out and named: at most the timeout is waited for it, then, once it missed a heartbeat, nothing', async () => {
    const stuck = workerPid(2);
    process.kill(stuck, 'SIGSTOP');
    try {
      let answer: Awaited<ReturnType<typeof scrape>> | undefined;
      // A connection the kernel hands to the stopped worker waits: try again on another one.
      for (let attempt = 0; attempt < 20 && answer === undefined; attempt += 1) {
        answer = await scrape(GATHER_TIMEOUT_MS + 4_000).catch(() => undefined);
      }
      if (answer === undefined) throw new Error('no scrape reached worker 1');
      expect(answer.worker).toBe('1');
      expect(answer.tookMs).toBeLessThan(GATHER_TIMEOUT_MS + 3_000);
      // The primary knows it is silent now: the next scrape does not wait for it.
      let next: Awaited<ReturnType<typeof scrape>> | undefined;
      for (let attempt = 0; attempt < 20 && next === undefined; attempt += 1) next = await scrape(1_500).catch(() => undefined);
      expect(next?.worker).toBe('1');
      expect(next?.tookMs).toBeLessThan(1_000);
      expect(valueOf(next?.exposition as Exposition, 'keyway_metrics_worker_up', { worker: '2' })).toBe(0);
      expect(valueOf(answer.exposition, 'keyway_metrics_worker_up', { worker: '1' })).toBe(1);
      expect(valueOf(answer.exposition, 'keyway_metrics_worker_up', { worker: '2' })).toBe(0);
      expect(sumOf(answer.exposition, 'keyway_requests_total', { worker: '1' })).toBe(answered.get('1') as number);
      expect(sumOf(answer.exposition, 'keyway_requests_total', { worker: '2' })).toBe(0);
    } finally {
      process.kill(stuck, 'SIGCONT');
    }
    // Back, it is in the scrapes again, as soon as the primary has heard from it.
    const back = await until(async () => valueOf((await scrape()).exposition, 'keyway_metrics_worker_up', { worker: '2' }) === 1, 5_000);
    expect(back).toBe(true);
  }, 120_000);
});
