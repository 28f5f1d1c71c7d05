// The books survive the process: a SIGKILL loses no usage row and a restart books none twice; a
// second SIGTERM still writes the queue; a stream still running at the drain deadline is ended with
// an error event, booked once, and does not hold the shutdown.

import { expect, test } from 'bun:test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  addOpenAIKey,
  bookedRows,
  type BookedRow,
  chatCompletion,
  dataFolderEnv,
  FROM_SOURCE,
  logLines,
  ssePayloads,
  startGatewayProcess,
  type GatewayProcess,
  simulatorAndScratch,
} from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-CrashSafetyUpstreamKey00000000001';
const OPERATOR_KEY = 'kw_op_CrashSafetyOperatorKey0123456789abcdef';
/** A reply of about 80 words: at a few hundred milliseconds a chunk, a stream of many seconds. */
const LONG_PROMPT = 'word '.repeat(80).trim();

const suite = simulatorAndScratch(UPSTREAM_KEY);
const dataDirectory = (name: string): string => suite.dataDirectory(name);

function start(directory: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  return startGatewayProcess({
    command: FROM_SOURCE,
    cwd: directory,
    env: dataFolderEnv(directory, { operatorKey: OPERATOR_KEY, upstreams: { openai: suite.simulator.url }, extra: env }),
  });
}

const usageRows = bookedRows;

const journalFiles = (directory: string): string[] => readdirSync(join(directory, 'usage-journal')).filter((name) => name.endsWith('.jsonl'));

/** One call read to its end; every second one streamed. Returns its request id. */
async function answeredCall(url: string, index: number): Promise<string> {
  const stream = index % 2 === 1;
  const response = await chatCompletion(url, OPERATOR_KEY, { model: 'gpt-4o', stream, messages: [{ role: 'user', content: `call ${index}` }] });
  const body = await response.text();
  expect(response.status).toBe(200);
  if (stream) expect(ssePayloads(body).at(-1)).toBe('[DONE]');
  return response.headers.get('x-request-id') as string;
}

async function answeredCalls(url: string, from: number, count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => answeredCall(url, from + index)));
}

test('SIGKILL loses no usage row, and restarts book none twice', async () => {
  const directory = dataDirectory('crash');
  // Round 1: nothing reaches the store before the kill (the flush is a minute away): all from the journal.
  let gateway = await start(directory, { KEYWAY_USAGE_FLUSH_MS: '60000' });
  let killed = false;
  const answered: string[] = [];
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    answered.push(...(await answeredCalls(gateway.url, 0, 30)));
    gateway.process.kill('SIGKILL');
    expect(await gateway.waitForExit()).toBe(137);
    killed = true;
    expect(usageRows(directory)).toHaveLength(0);
    expect(journalFiles(directory).length).toBeGreaterThan(0);

    // Round 2: the restart replays them; small, frequent flushes then leave some rows committed and
    // some only journaled (and possibly a file whose rows are committed but not yet deleted) at the next kill.
    gateway = await start(directory, { KEYWAY_USAGE_FLUSH_MS: '15', KEYWAY_USAGE_BATCH_SIZE: '7' });
    killed = false;
    expect(
      usageRows(directory)
        .map((row) => row.request_id)
        .sort(),
    ).toEqual([...answered].sort());
    const replayLog = logLines(gateway.stdout()).find((line) => line.msg === 'replaying the usage journal of a previous run');
    expect(replayLog?.rows).toBe(30);
    answered.push(...(await answeredCalls(gateway.url, 30, 40)));
    gateway.process.kill('SIGKILL');
    await gateway.waitForExit();
    killed = true;

    // Round 3: the second replay skips what round 2 had committed.
    gateway = await start(directory, { KEYWAY_USAGE_FLUSH_MS: '60000' });
    killed = false;
    const rows = usageRows(directory);
    expect(rows).toHaveLength(70);
    expect(new Set(rows.map((row) => row.request_id)).size).toBe(70);
    expect(rows.map((row) => row.request_id).sort()).toEqual([...answered].sort());
    for (const row of rows) {
      expect(row.status).toBe(200);
      expect(row.input_tokens).toBeGreaterThan(0);
      expect(row.usage_estimated).toBe(0);
    }
    expect(await gateway.stop('SIGTERM')).toBe(0);
    killed = true;
    expect(usageRows(directory)).toHaveLength(70);
    expect(journalFiles(directory)).toEqual([]);
  } finally {
    if (!killed) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 120_000);

test('a second SIGTERM does not kill the drain: streams end at once, every queued row is written, exit 0', async () => {
  const directory = dataDirectory('double-sigterm');
  const gateway = await start(directory, { KEYWAY_USAGE_FLUSH_MS: '60000', KEYWAY_DRAIN_TIMEOUT_MS: '60000' });
  let exited = false;
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    const answered = await answeredCalls(gateway.url, 0, 10);
    suite.simulator.inject({ kind: 'slow_stream', delayMs: 300 });
    const streaming = await chatCompletion(gateway.url, OPERATOR_KEY, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: LONG_PROMPT }] });
    expect(streaming.status).toBe(200);
    const streamId = streaming.headers.get('x-request-id') as string;
    const body = streaming.text();

    gateway.process.kill('SIGTERM');
    await Bun.sleep(300);
    const secondAt = performance.now();
    gateway.process.kill('SIGTERM');
    const payloads = ssePayloads(await body);
    // The second signal ended the stream well before its dozens of seconds.
    expect(performance.now() - secondAt).toBeLessThan(5_000);
    const last = JSON.parse(payloads.at(-1) as string) as { error?: { message: string } };
    expect(last.error?.message).toContain('shutting down');

    expect(await gateway.waitForExit()).toBe(0);
    exited = true;
    expect(gateway.stdout()).toContain('shutdown already under way');
    expect(gateway.stdout()).not.toContain('could not be written at shutdown');
    const rows = usageRows(directory);
    expect(rows).toHaveLength(11);
    expect(rows.map((row) => row.request_id).sort()).toEqual([...answered, streamId].sort());
    const streamRow = rows.find((row) => row.request_id === streamId) as BookedRow;
    expect(streamRow.status).toBe(503);
    expect(streamRow.usage_estimated).toBe(1);
    expect(streamRow.cost_usd).toBeGreaterThan(0);
  } finally {
    if (!exited) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);

test('a stream still running at the drain deadline ends with an error event, is booked once, and the process exits 0', async () => {
  const directory = dataDirectory('drain-deadline');
  const deadlineMs = 800;
  const gateway = await start(directory, { KEYWAY_USAGE_FLUSH_MS: '60000', KEYWAY_DRAIN_TIMEOUT_MS: String(deadlineMs) });
  let exited = false;
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    suite.simulator.inject({ kind: 'slow_stream', delayMs: 300 });
    const streaming = await chatCompletion(gateway.url, OPERATOR_KEY, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: LONG_PROMPT }] });
    expect(streaming.status).toBe(200);
    const streamId = streaming.headers.get('x-request-id') as string;
    const body = streaming.text();

    const signalledAt = performance.now();
    gateway.process.kill('SIGTERM');
    const payloads = ssePayloads(await body);
    const endedAfter = performance.now() - signalledAt;
    expect(endedAfter).toBeGreaterThanOrEqual(deadlineMs - 50);
    expect(endedAfter).toBeLessThan(deadlineMs + 2_000);
    // Some content came through before the deadline, then the error event in OpenAI's shape, no [DONE].
    expect(payloads.length).toBeGreaterThan(1);
    expect(payloads).not.toContain('[DONE]');
    const last = JSON.parse(payloads.at(-1) as string) as { error?: { type: string; message: string } };
    expect(last.error?.message).toContain('KEYWAY_DRAIN_TIMEOUT_MS');

    expect(await gateway.waitForExit()).toBe(0);
    exited = true;
    const rows = usageRows(directory);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.request_id).toBe(streamId);
    expect(rows[0]?.status).toBe(503);
    expect(rows[0]?.usage_estimated).toBe(1);
    expect(rows[0]?.input_tokens).toBeGreaterThan(0);
    expect(rows[0]?.output_tokens).toBeGreaterThan(0);
    expect(journalFiles(directory)).toEqual([]);
  } finally {
    if (!exited) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);
