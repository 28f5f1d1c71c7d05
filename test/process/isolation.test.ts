// Connection isolation in a real gateway process (plugins/main.ts, so the start-up re-exec that sizes
// Bun's fetch connection limit applies): one account holding hundreds of slow streams to its
// provider must not slow another account's calls to a different provider, nor make them count as
// that provider's failures; and an account past its in-flight share waits in Keyway's queue (then
// gets 503 gateway_busy) while the other account is served at once.
//
// Account A's streams are opened on raw TCP sockets: this test process's own fetch has Bun's
// default limit of 256 and would queue B's calls behind A's streams on the client side.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionsReport } from '../../core/lifecycle/upstream-slots.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { dataFolderEnv, FROM_SOURCE, runUntilExit, startGatewayProcess, type GatewayProcess } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_IsolationTestOperatorKey0123456789ab';
const KEY_A = 'sk-proj-IsolationAccountA000000000000000001';
const KEY_B = 'gsk_IsolationAccountB00000000000000000000001';
const A_STREAMS = 320;
const B_CALLS = 50;
/** An echoed prompt this long streams about 50 events: 10 s at 200 ms apart. */
const LONG_PROMPT = 'x'.repeat(400);
/** About 17 events: 3.4 s. */
const SHORT_PROMPT = 'y'.repeat(100);

const directories: string[] = [];
let simulatorA: SimulatorHandle;
let simulatorB: SimulatorHandle;

beforeAll(() => {
  simulatorA = startOpenAISimulator({ apiKeys: [KEY_A] });
  simulatorB = startOpenAISimulator({ apiKeys: [KEY_B] });
});

afterAll(async () => {
  await simulatorA?.stop();
  await simulatorB?.stop();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

async function startGateway(env: Record<string, string> = {}): Promise<GatewayProcess> {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-isolation-'));
  directories.push(directory);
  return startGatewayProcess({
    command: FROM_SOURCE,
    cwd: directory,
    env: dataFolderEnv(join(directory, 'data'), { operatorKey: OPERATOR_KEY, upstreams: { openai: simulatorA.url, groq: simulatorB.url }, extra: env }),
  });
}

async function api(gateway: GatewayProcess, method: string, path: string, key: string, body?: unknown): Promise<Response> {
  return fetch(`${gateway.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A new account with one provider key; returns the account's admin key. */
async function account(gateway: GatewayProcess, name: string, provider: string, apiKey: string): Promise<string> {
  const created = await api(gateway, 'POST', '/v1/accounts', OPERATOR_KEY, { name });
  expect(created.status).toBe(201);
  const key = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
  const added = await api(gateway, 'POST', '/v1/providers/keys', key, { providers: [{ name: provider, api_key: apiKey }] });
  expect(added.status).toBe(201);
  return key;
}

async function connections(gateway: GatewayProcess): Promise<ConnectionsReport> {
  const response = await api(gateway, 'GET', '/v1/platform/connections', OPERATOR_KEY);
  expect(response.status).toBe(200);
  return (await response.json()) as ConnectionsReport;
}

interface ProviderHealth {
  name: string;
  status: string;
  success_rate: number;
  requests: number;
  issues: string[];
}

async function providerHealth(gateway: GatewayProcess, key: string, provider: string): Promise<ProviderHealth | undefined> {
  const response = await api(gateway, 'GET', '/v1/providers/health', key);
  const body = (await response.json()) as { providers: ProviderHealth[] };
  return body.providers.find((entry) => entry.name === provider);
}

/** B's calls: sequential, non-streamed, each timed end to end. */
async function timedCalls(gateway: GatewayProcess, key: string, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const response = await api(gateway, 'POST', '/v1/chat/completions', key, {
      model: 'groq/gpt-4o-mini',
      messages: [{ role: 'user', content: `call ${index}` }],
    });
    const text = await response.text();
    latencies.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`B's call ${index} failed: ${response.status} ${text}`);
  }
  return latencies;
}

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] as number;
}

function summary(values: readonly number[]): string {
  return `p50 ${percentile(values, 0.5).toFixed(1)} ms, p99 ${percentile(values, 0.99).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`;
}

interface RawStream {
  /** The HTTP status, once the status line arrived. */
  status: Promise<number>;
  /** The whole response (headers and body) once it is complete or the connection closed. */
  finished: Promise<string>;
  ended(): boolean;
  destroy(): void;
}

/** A streamed chat completion on its own TCP connection, outside this process's fetch limit. */
function rawStream(gateway: GatewayProcess, key: string, prompt: string): RawStream {
  const url = new URL(gateway.url);
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] });
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  let text = '';
  let ended = false;
  let resolveStatus: (status: number) => void = () => undefined;
  let resolveFinished: (text: string) => void = () => undefined;
  const status = new Promise<number>((resolve) => {
    resolveStatus = resolve;
  });
  const finished = new Promise<string>((resolve) => {
    resolveFinished = resolve;
  });
  const finish = () => {
    if (ended) return;
    ended = true;
    resolveStatus(0);
    resolveFinished(text);
    socket.destroy();
  };
  socket.on('connect', () => {
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    const statusLine = /^HTTP\/1\.1 (\d{3})/.exec(text);
    if (statusLine !== null) resolveStatus(Number(statusLine[1]));
    const headerEnd = text.indexOf('\r\n\r\n');
    if (headerEnd < 0) return;
    const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, headerEnd));
    const complete = length !== null ? Buffer.byteLength(text.slice(headerEnd + 4)) >= Number(length[1]) : text.endsWith('\r\n0\r\n\r\n');
    if (complete) finish();
  });
  socket.on('end', finish);
  socket.on('close', finish);
  socket.on('error', finish);
  return { status, finished, ended: () => ended, destroy: finish };
}

async function waitFor(description: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await Bun.sleep(20);
  }
}

describe('connection isolation between accounts', () => {
  test(`${A_STREAMS} slow streams of account A leave account B's calls to another provider as fast as before, and B's provider healthy`, async () => {
    simulatorA.reset();
    simulatorB.reset();
    simulatorA.setSticky({ kind: 'slow_stream', delayMs: 200 });
    const gateway = await startGateway();
    const streams: RawStream[] = [];
    try {
      // The re-exec happened: the process runs with a connection limit sized for a gateway.
      const environ = `/proc/${gateway.process.pid}/environ`;
      if (existsSync(environ)) expect(readFileSync(environ, 'utf8').split('\0')).toContainEqual(expect.stringMatching(/^BUN_CONFIG_MAX_HTTP_REQUESTS=\d+$/));
      const limits = (await connections(gateway)).limits;
      expect(limits.upstream_connections).toBeGreaterThan(A_STREAMS * 4);
      const keyA = await account(gateway, 'isolation-a', 'openai', KEY_A);
      const keyB = await account(gateway, 'isolation-b', 'groq', KEY_B);

      await timedCalls(gateway, keyB, 5);
      const baseline = await timedCalls(gateway, keyB, B_CALLS);

      for (let index = 0; index < A_STREAMS; index++) streams.push(rawStream(gateway, keyA, LONG_PROMPT));
      // Every one of A's streams reaches its provider at once: none waits in a connection queue.
      await waitFor(`${A_STREAMS} streams upstream`, () => simulatorA.inferenceRequests().length >= A_STREAMS, 15_000);
      const statuses = await Promise.all(streams.map((stream) => stream.status));
      expect(statuses.every((status) => status === 200)).toBe(true);
      const during = await connections(gateway);
      expect(during.in_flight).toBeGreaterThanOrEqual(A_STREAMS);
      expect(during.queued).toBe(0);

      const loaded = await timedCalls(gateway, keyB, B_CALLS);
      // A's streams were still running the whole time.
      expect(streams.filter((stream) => stream.ended()).length).toBe(0);
      process.stdout.write(
        `[isolation] limit ${limits.upstream_connections} connections (per account ${limits.per_account}, per upstream ${limits.per_upstream})\n` +
          `[isolation] B alone:                     ${summary(baseline)}\n` +
          `[isolation] B with A's ${A_STREAMS} slow streams: ${summary(loaded)}\n`,
      );
      expect(percentile(loaded, 0.99)).toBeLessThan(percentile(baseline, 0.99) + 250);

      const healthB = await providerHealth(gateway, keyB, 'groq');
      expect(healthB).toMatchObject({ status: 'healthy', success_rate: 100, issues: [] });
      expect(healthB?.requests).toBeGreaterThanOrEqual(2 * B_CALLS);

      // A's clients leave: every slot comes back.
      for (const stream of streams) stream.destroy();
      await waitFor('the slots of cancelled streams', async () => (await connections(gateway)).in_flight === 0, 10_000);
    } finally {
      for (const stream of streams) stream.destroy();
      simulatorA.setSticky(undefined);
      await gateway.stop();
    }
  }, 60_000);

  test('an account past its in-flight share is queued, then refused with gateway_busy; the other account is served at once', async () => {
    simulatorA.reset();
    simulatorB.reset();
    simulatorA.setSticky({ kind: 'slow_stream', delayMs: 200 });
    const share = 20;
    const gateway = await startGateway({
      KEYWAY_MAX_UPSTREAM_CONNECTIONS: '2048',
      KEYWAY_MAX_INFLIGHT_PER_ACCOUNT: String(share),
      KEYWAY_UPSTREAM_QUEUE_TIMEOUT_MS: '1000',
    });
    const streams: RawStream[] = [];
    try {
      expect((await connections(gateway)).limits).toEqual({ upstream_connections: 2048, per_account: share, per_upstream: 1024, queue_timeout_ms: 1000 });
      const keyA = await account(gateway, 'share-a', 'openai', KEY_A);
      const keyB = await account(gateway, 'share-b', 'groq', KEY_B);
      await timedCalls(gateway, keyB, 3);
      const baseline = await timedCalls(gateway, keyB, 20);

      for (let index = 0; index < 2 * share; index++) streams.push(rawStream(gateway, keyA, SHORT_PROMPT));
      await waitFor('the queue to fill', async () => (await connections(gateway)).queued === share, 5000);
      const queued = await connections(gateway);
      expect(queued.accounts[0]).toMatchObject({ in_flight: share, limit: share, queued: share });
      // Only the share reached the provider.
      expect(simulatorA.inferenceRequests().length).toBe(share);

      const loaded = await timedCalls(gateway, keyB, 20);
      process.stdout.write(`[isolation] B beside A queued at its share of ${share}: ${summary(loaded)} (alone: ${summary(baseline)})\n`);
      expect(percentile(loaded, 0.99)).toBeLessThan(percentile(baseline, 0.99) + 250);

      const answers = await Promise.all(streams.map((stream) => stream.finished));
      const served = answers.filter((answer) => answer.startsWith('HTTP/1.1 200'));
      const refused = answers.filter((answer) => answer.startsWith('HTTP/1.1 503'));
      expect(served.length).toBe(share);
      expect(refused.length).toBe(share);
      for (const answer of refused) {
        expect(answer).toContain('"code":"gateway_busy"');
        expect(answer.toLowerCase()).toMatch(/\r\nretry-after: [1-9]/);
      }
      const after = await connections(gateway);
      expect(after).toMatchObject({ in_flight: 0, queued: 0, timed_out_total: share });
      expect(after.wait_ms.samples).toBe(share);
      expect(after.wait_ms.p50).toBeGreaterThanOrEqual(950);

      // Keyway's refusals are not the provider's failures.
      const healthA = await providerHealth(gateway, keyA, 'openai');
      expect(healthA).toMatchObject({ status: 'healthy', success_rate: 100, issues: [] });
      expect(healthA?.requests).toBe(share);
    } finally {
      for (const stream of streams) stream.destroy();
      simulatorA.setSticky(undefined);
      await gateway.stop();
    }
  }, 60_000);

  test('a malformed KEYWAY_MAX_UPSTREAM_CONNECTIONS stops the start in one line', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'keyway-isolation-'));
    directories.push(directory);
    const result = await runUntilExit({
      command: FROM_SOURCE,
      cwd: directory,
      env: { KEYWAY_MAX_UPSTREAM_CONNECTIONS: 'lots', KEYWAY_DATA_DIR: join(directory, 'data') },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('keyway: cannot start: KEYWAY_MAX_UPSTREAM_CONNECTIONS must be an integer between 1 and 65535; got "lots".\n');
  });
});
