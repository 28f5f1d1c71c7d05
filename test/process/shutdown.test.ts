// SIGTERM must not lose usage: with a flush interval far longer than the test, every usage row
// reaches SQLite only through the shutdown drain.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, chatCompletion, FROM_SOURCE, ssePayloads, startGatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-ShutdownTestUpstreamKey0000000000001';
const OPERATOR_KEY = 'kw_op_ShutdownTestOperatorKey0123456789abcdef';
const CALLS = 25;

let simulator: SimulatorHandle;
let dataDirectory: string;

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-shutdown-'));
});

afterAll(async () => {
  await simulator.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
});

interface Answered {
  requestId: string;
  streamed: boolean;
}

/** One call, read to its end (the stream through `[DONE]`), so the gateway considers it finished. */
async function answeredCall(url: string, index: number): Promise<Answered> {
  const streamed = index % 2 === 1;
  const response = await chatCompletion(url, OPERATOR_KEY, {
    model: 'gpt-4o',
    stream: streamed,
    messages: [{ role: 'user', content: `call number ${index}` }],
  });
  const body = await response.text();
  expect(response.status).toBe(200);
  if (streamed) expect(ssePayloads(body).at(-1)).toBe('[DONE]');
  else expect((JSON.parse(body) as { object: string }).object).toBe('chat.completion');
  const requestId = response.headers.get('x-request-id');
  expect(requestId).toBeTruthy();
  return { requestId: requestId as string, streamed };
}

interface UsageRecord {
  request_id: string;
  input_tokens: number;
  output_tokens: number;
  streamed: number;
  status: number;
  provider: string | null;
}

test(`SIGTERM right after the last answer writes all ${CALLS} usage rows and exits 0`, async () => {
  const databaseFile = join(dataDirectory, 'keyway.db');
  const gateway = await startGatewayProcess({
    command: FROM_SOURCE,
    cwd: dataDirectory,
    env: {
      KEYWAY_DATA_DIR: dataDirectory,
      KEYWAY_DATABASE_URL: `file:${databaseFile}`,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      KEYWAY_USAGE_FLUSH_MS: '60000',
    },
  });
  let exitCode: number | undefined;
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    const answered = await Promise.all(Array.from({ length: CALLS }, (_, index) => answeredCall(gateway.url, index)));
    exitCode = await gateway.stop('SIGTERM');
    expect(new Set(answered.map((call) => call.requestId)).size).toBe(CALLS);

    // On a failure, what the gateway printed says which part of the shutdown went wrong.
    const printed = `exit code ${String(exitCode)}\n--- stdout\n${gateway.stdout()}\n--- stderr\n${gateway.stderr()}`;
    expect({ exitCode, printed }).toEqual({ exitCode: 0, printed: expect.stringContaining('"msg":"shutting down"') });
    expect(printed).toContain(`"usageWritten":${CALLS}`);
    expect(printed).not.toContain('could not be written at shutdown');

    const database = new Database(databaseFile, { readonly: true });
    try {
      const rows = database.query('SELECT request_id, input_tokens, output_tokens, streamed, status, provider FROM usage_records').all() as UsageRecord[];
      expect(rows.length).toBe(CALLS);
      expect(rows.map((row) => row.request_id).sort()).toEqual(answered.map((call) => call.requestId).sort());
      const streamedById = new Map(answered.map((call) => [call.requestId, call.streamed]));
      for (const row of rows) {
        expect(row.status).toBe(200);
        expect(row.provider).toBe('openai');
        expect(row.input_tokens).toBeGreaterThan(0);
        expect(row.output_tokens).toBeGreaterThan(0);
        expect(row.streamed === 1).toBe(streamedById.get(row.request_id) as boolean);
      }
    } finally {
      database.close();
    }
  } finally {
    if (exitCode === undefined) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);

test('a stream still running at SIGTERM is finished, then recorded', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'keyway-shutdown-inflight-'));
  const databaseFile = join(scratch, 'keyway.db');
  const gateway = await startGatewayProcess({
    command: FROM_SOURCE,
    cwd: scratch,
    env: {
      KEYWAY_DATA_DIR: scratch,
      KEYWAY_DATABASE_URL: `file:${databaseFile}`,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      KEYWAY_USAGE_FLUSH_MS: '60000',
    },
  });
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    simulator.inject({ kind: 'slow_stream', delayMs: 40 });
    const response = await chatCompletion(gateway.url, OPERATOR_KEY, {
      model: 'gpt-4o',
      stream: true,
      messages: [{ role: 'user', content: 'a reply long enough to take a while to stream' }],
    });
    expect(response.status).toBe(200);
    gateway.process.kill('SIGTERM');
    // Let the signal land while the stream is still being written.
    await Bun.sleep(100);
    const payloads = ssePayloads(await response.text());
    expect(payloads.at(-1)).toBe('[DONE]');
    // One signal only: a second one would end the stream at once (test/process/crash-safety.test.ts).
    expect(await gateway.waitForExit()).toBe(0);
    const database = new Database(databaseFile, { readonly: true });
    try {
      const rows = database.query('SELECT request_id FROM usage_records').all() as Array<{ request_id: string }>;
      expect(rows.map((row) => row.request_id)).toEqual([response.headers.get('x-request-id') as string]);
    } finally {
      database.close();
    }
  } finally {
    await gateway.stop('SIGKILL').catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}, 60_000);
