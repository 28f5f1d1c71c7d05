// The fair-share limiter inside the lifecycle: every attempt takes its slots, and every way an answer
// ends (a value, a finished stream, a cancelled stream, a failure before or after the first byte)
// gives them back. Time queued is Keyway's: it is not the provider's latency, does not eat into the
// provider's first-byte deadline, and a refusal (gateway_busy) is not the provider's failure.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ConnectionsReport } from '../../core/lifecycle/upstream-slots.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const UPSTREAM_KEY = 'sk-proj-SlotsLifecycleKey0000000000000001';
const QUEUE_TIMEOUT_MS = 250;

let simulator: SimulatorHandle;
let gateway: TestGateway;
let accountA: string;
let accountB: string;

async function createAccount(name: string): Promise<string> {
  const response = await call(gateway, 'POST', '/v1/accounts', { name });
  const body = (await response.json()) as { admin_key: { api_key: string } };
  expect(response.status).toBe(201);
  await addProviderKeys(gateway, [{ name: 'openai', api_key: UPSTREAM_KEY }], body.admin_key.api_key);
  return body.admin_key.api_key;
}

function chat(key: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], ...extra }, { key });
}

async function connections(): Promise<ConnectionsReport> {
  const response = await call(gateway, 'GET', '/v1/platform/connections');
  expect(response.status).toBe(200);
  return (await response.json()) as ConnectionsReport;
}

/** Waits until nothing holds a slot (a cancelled stream lets go a moment after the client does). */
async function settled(): Promise<ConnectionsReport> {
  const deadline = performance.now() + 3000;
  let report = await connections();
  while ((report.in_flight !== 0 || report.queued !== 0) && performance.now() < deadline) {
    await Bun.sleep(10);
    report = await connections();
  }
  return report;
}

async function health(key: string): Promise<{ success_rate: number; requests: number; latency_p95_ms: number | null; issues: string[] }> {
  const response = await call(gateway, 'GET', '/v1/providers/health', undefined, { key });
  const body = (await response.json()) as {
    providers: Array<{ name: string; success_rate: number; requests: number; latency_p95_ms: number | null; issues: string[] }>;
  };
  return body.providers.find((provider) => provider.name === 'openai') as never;
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  gateway = await startTestGateway({
    env: {
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      KEYWAY_MAX_INFLIGHT_PER_ACCOUNT: '1',
      KEYWAY_UPSTREAM_QUEUE_TIMEOUT_MS: String(QUEUE_TIMEOUT_MS),
    },
    probes: false,
  });
  accountA = await createAccount('slots-a');
  accountB = await createAccount('slots-b');
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

describe('slots are given back on every path', () => {
  test('the route answers the operator only', async () => {
    expect((await call(gateway, 'GET', '/v1/platform/connections', undefined, { key: accountA })).status).toBe(403);
    const report = await connections();
    expect(report.limits).toMatchObject({ per_account: 1, queue_timeout_ms: QUEUE_TIMEOUT_MS });
  });

  test('a non-streamed answer', async () => {
    const response = await chat(accountA);
    expect(response.status).toBe(200);
    await response.json();
    expect((await settled()).in_flight).toBe(0);
  });

  test('a stream read to its end', async () => {
    const response = await chat(accountA, { stream: true });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('[DONE]');
    expect((await settled()).in_flight).toBe(0);
  });

  test('a stream the client cancels half-way', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 100 });
    const response = await chat(accountA, { stream: true });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    expect((await connections()).in_flight).toBe(1);
    await reader.cancel();
    expect((await settled()).in_flight).toBe(0);
  });

  test('a stream that fails after its first byte', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const response = await chat(accountA, { stream: true });
    await response.text();
    expect((await settled()).in_flight).toBe(0);
  });

  test('a failure before the first byte, and a first-byte timeout', async () => {
    simulator.inject({ kind: 'server_error' });
    expect((await chat(accountA, { routing: { fallback_reasons: [] } })).status).toBe(502);
    expect((await settled()).in_flight).toBe(0);
    simulator.inject({ kind: 'delay', delayMs: 400 });
    expect((await chat(accountA, { routing: { timeout_ms: 50 } })).status).toBe(504);
    expect((await settled()).in_flight).toBe(0);
  });
});

describe('queueing is Keyway time', () => {
  test('past the queue timeout: 503 gateway_busy with Retry-After; the provider is not blamed; another account is served meanwhile', async () => {
    // A fresh account, so its provider health holds only this test's calls.
    const accountC = await createAccount('slots-c');
    simulator.inject({ kind: 'delay', delayMs: 900 });
    const holding = chat(accountC);
    await Bun.sleep(50);
    const startedB = performance.now();
    const other = await chat(accountB);
    const otherMs = performance.now() - startedB;
    expect(other.status).toBe(200);
    const refused = await chat(accountC);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('x-fallback-attempts')).toBe('0');
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('gateway_busy');
    expect(body.error.message).toContain('this account');
    expect((await holding).status).toBe(200);
    const healthAfter = await health(accountC);
    expect(healthAfter.success_rate).toBe(100);
    expect(healthAfter.issues).toEqual([]);
    // The refusal never reached the provider, and is not counted as a call to it.
    expect(healthAfter.requests).toBe(1);
    expect(otherMs).toBeLessThan(500);
    const report = await settled();
    expect(report.timed_out_total).toBeGreaterThanOrEqual(1);
    expect(report.accounts.find((pool) => pool.timed_out_total > 0)?.in_flight).toBe(0);
  });

  test('a queued attempt is served once a slot frees; its wait is neither its latency nor part of its first-byte deadline', async () => {
    const slow = await startTestGateway({
      env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MAX_INFLIGHT_PER_ACCOUNT: '1', KEYWAY_FIRST_BYTE_TIMEOUT_MS: '2000' },
      probes: false,
    });
    try {
      await addProviderKeys(slow, [{ name: 'openai', api_key: UPSTREAM_KEY }]);
      simulator.inject({ kind: 'delay', delayMs: 1200 }, { kind: 'delay', delayMs: 1200 });
      const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] };
      const first = call(slow, 'POST', '/v1/chat/completions', body);
      await Bun.sleep(50);
      const started = performance.now();
      // Waits about 1.15 s for the slot, then the provider takes 1.2 s: 2.35 s in all, past the
      // 2 s first-byte deadline, yet within it for the provider's own part.
      const second = await call(slow, 'POST', '/v1/chat/completions', body);
      const elapsed = performance.now() - started;
      expect((await first).status).toBe(200);
      expect(second.status).toBe(200);
      expect(elapsed).toBeGreaterThan(2000);
      const report = slow.runtime.slots.report();
      expect(report.queued_total).toBe(1);
      expect(report.wait_ms.max).toBeGreaterThan(900);
      // The provider's latency is its own: about 1.2 s for each call, not 2.35 s for the queued one.
      const latency = slow.runtime.health.report('openai', slow.runtime.snapshots.current.accountKeys.get('default')?.get('openai') ?? []);
      expect(latency.latency_p95_ms).toBeLessThan(1900);
      expect(latency.success_rate).toBe(100);
    } finally {
      await slow.stop();
    }
  });
});
