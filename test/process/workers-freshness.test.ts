// KEYWAY_WORKERS=2 as an operator runs it: what one worker answers to a management call, the other
// worker's next read already shows. A management action is in the audit log as soon as its answer,
// whichever worker reads; a refused price-file reload is the file's state on every worker, as an
// accepted one is. Reads go over fresh connections, so the kernel hands them to either worker.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataFolderEnv, freshCall, FROM_SOURCE, startGatewayProcess, type GatewayProcess } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_FreshnessOperatorKey0123456789abcdef';
const STRATEGIES = ['cost_optimized', 'byok_preferred', 'direct'] as const;

let gateway: GatewayProcess;
let directory = '';
let pricesFile = '';

/** One request on a connection of its own, so the kernel may hand it to either worker. */
function send(path: string, method = 'GET', body?: unknown): Promise<Response> {
  return freshCall(`${gateway.url}${path}`, OPERATOR_KEY, method, body);
}

const workerOf = (response: Response): string => response.headers.get('x-keyway-worker') ?? 'none';

function writePrices(text: string): void {
  writeFileSync(pricesFile, text);
}

const pricedFile = (inputCostPerToken: number) =>
  JSON.stringify({ 'gpt-4.1': { litellm_provider: 'openai', mode: 'chat', input_cost_per_token: inputCostPerToken, output_cost_per_token: 0.000008 } });

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'keyway-workers-freshness-'));
  pricesFile = join(directory, 'prices.json');
  writePrices(pricedFile(0.000002));
  gateway = await startGatewayProcess(
    {
      command: FROM_SOURCE,
      cwd: directory,
      env: dataFolderEnv(directory, {
        operatorKey: OPERATOR_KEY,
        // The audit queue's timer never writes during the test: only what a call itself writes is in the log.
        extra: { KEYWAY_WORKERS: '2', KEYWAY_AUDIT_FLUSH_MS: '600000', KEYWAY_PRICES_FILE: pricesFile },
      }),
    },
    40_000,
  );
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM').catch(() => undefined);
  rmSync(directory, { recursive: true, force: true });
});

describe('KEYWAY_WORKERS=2: the audit log', () => {
  test('a management action is in the log as soon as its answer, read on the other worker', async () => {
    const reads: Array<{ sameWorker: boolean; found: boolean }> = [];
    for (let round = 0; round < 80 && reads.filter((read) => !read.sameWorker).length < 6; round += 1) {
      const written = await send('/v1/settings/routing', 'PUT', { routing: { strategy: STRATEGIES[round % STRATEGIES.length] } });
      expect(written.status).toBe(200);
      await written.arrayBuffer();
      const requestId = written.headers.get('x-request-id');
      const read = await send('/v1/audit-logs?type=admin&limit=5');
      expect(read.status).toBe(200);
      const { events } = (await read.json()) as { events: Array<{ request_id: string | null; action: string }> };
      const found = events.some((event) => event.request_id === requestId && event.action === 'PUT /v1/settings/routing');
      reads.push({ sameWorker: workerOf(read) === workerOf(written), found });
    }
    // Enough reads landed on the worker that did not write for the test to say something.
    expect(reads.filter((read) => !read.sameWorker).length).toBeGreaterThanOrEqual(6);
    expect(reads.filter((read) => !read.found)).toEqual([]);
  }, 30_000);
});

describe('KEYWAY_WORKERS=2: the price file', () => {
  /** `file.error` as each worker reports it, once both answered with `expected` or the time is up. */
  async function fileErrorByWorker(expected: (error: unknown) => boolean): Promise<Map<string, unknown>> {
    const byWorker = new Map<string, unknown>();
    const deadline = performance.now() + 3_000;
    while (performance.now() < deadline) {
      const response = await send('/v1/platform/prices?model=gpt-4.1');
      expect(response.status).toBe(200);
      byWorker.set(workerOf(response), ((await response.json()) as { file: { error: unknown } }).file.error);
      if (byWorker.size === 2 && [...byWorker.values()].every(expected)) break;
      await Bun.sleep(10);
    }
    return byWorker;
  }

  test('every worker shows the latest refusal of the file, and a good file clears it everywhere', async () => {
    writePrices(pricedFile(-1));
    const negative = await send('/v1/platform/prices/reload', 'POST');
    expect(negative.status).toBe(400);
    await negative.arrayBuffer();
    writePrices('not json');
    const notJson = await send('/v1/platform/prices/reload', 'POST');
    expect(notJson.status).toBe(400);
    await notJson.arrayBuffer();
    const isNotJson = (error: unknown) => typeof error === 'string' && error.includes('not valid JSON');
    const refused = await fileErrorByWorker(isNotJson);
    expect([...refused.keys()].sort()).toEqual(['1', '2']);
    expect([...refused.values()].map(isNotJson)).toEqual([true, true]);

    writePrices(pricedFile(0.000003));
    const good = await send('/v1/platform/prices/reload', 'POST');
    expect(good.status).toBe(200);
    await good.arrayBuffer();
    const cleared = await fileErrorByWorker((error) => error === null);
    expect([...cleared.keys()].sort()).toEqual(['1', '2']);
    expect([...cleared.values()]).toEqual([null, null]);
  }, 30_000);
});
