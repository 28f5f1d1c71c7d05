// GET /ready: not ready (503 not_ready, with the reason) while the disk under the data is nearly full,
// while stored provider keys cannot be decrypted, and while usage records that cannot be written fill
// the memory buffer with no journal to hold them; ready again once the cause is gone. A store that does
// not answer, or usage waiting safely in the journal, leaves it ready and says so in `degraded`: every
// instance shares the store, so a 503 would take all of them out of the balancer (QA15 cluster #9).

import { afterEach, describe, expect, test } from 'bun:test';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { createReadiness, STORE_PING_TIMEOUT_MS, USAGE_STUCK_AFTER_MS } from '../../core/http/readiness.ts';
import type { Store } from '../../core/spec/store.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { usageRecord } from '../helpers/usage-record.ts';

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const gateway of gateways.splice(0)) await gateway.stop();
});

async function gatewayWith(env: Record<string, string> = {}): Promise<TestGateway> {
  // No upstream: the models check of an added key fails fast instead of leaving the machine.
  const offline = (async () => new Response('{"error":{"message":"offline"}}', { status: 503 })) as unknown as typeof fetch;
  const gateway = await startTestGateway({ env, probes: false, logLevel: 'info', fetch: offline });
  gateways.push(gateway);
  return gateway;
}

interface ReadyAnswer {
  status: number;
  body: {
    status?: string;
    degraded?: Array<{ check: string; detail: string }>;
    error?: { code: string; message: string; reasons?: Array<{ check: string; detail: string }> };
  };
}

async function ready(gateway: TestGateway): Promise<ReadyAnswer> {
  const response = await fetch(`${gateway.url}/ready`);
  return { status: response.status, body: (await response.json()) as ReadyAnswer['body'] };
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not reached in time');
    await Bun.sleep(10);
  }
}

function usageRow(requestId: string): UsageRecord {
  return usageRecord({
    requestId,
    gatewayKeyId: 'key_operator',
    endpoint: 'chat.completions',
    providerKeyId: null,
    byok: false,
    inputTokens: 1,
    outputTokens: 1,
    costUsd: 0,
    latencyMs: 1,
  });
}

describe('/ready', () => {
  test('is ready on a healthy gateway', async () => {
    const gateway = await gatewayWith();
    const answer = await ready(gateway);
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('ready');
  });

  /** Every way a batch reaches the store fails (where the journal wrote it, with its text, as rows); answers the restore. */
  function failUsageWrites(store: Store): () => void {
    const insertUsage = store.insertUsage.bind(store);
    const insertJournaledUsage = store.insertJournaledUsage?.bind(store);
    const insertJournalRange = store.insertJournalRange?.bind(store);
    const failing = async (): Promise<void> => {
      throw new Error('disk I/O error');
    };
    store.insertUsage = failing;
    if (insertJournaledUsage !== undefined) store.insertJournaledUsage = failing;
    if (insertJournalRange !== undefined) store.insertJournalRange = failing;
    return () => {
      store.insertUsage = insertUsage;
      if (insertJournaledUsage !== undefined) store.insertJournaledUsage = insertJournaledUsage;
      if (insertJournalRange !== undefined) store.insertJournalRange = insertJournalRange;
    };
  }

  test('usage writes failing with the journal holding the rows: ready, degraded, and clean again once they succeed', async () => {
    const gateway = await gatewayWith();
    const restore = failUsageWrites(gateway.runtime.store);
    gateway.runtime.usage.enqueue(usageRow('req_stuck_1'));
    await waitFor(() => gateway.runtime.usage.consecutiveFailures >= 3);
    const stuck = await ready(gateway);
    expect({ status: stuck.status, checks: stuck.body.degraded?.map((note) => note.check) }).toEqual({ status: 200, checks: ['usage'] });
    expect(stuck.body.degraded?.[0]?.detail).toMatch(/usage records are not being written: 1 pending .*; they wait in the usage journal/);
    expect(gateway.output.join('\n')).toContain('ready, degraded: usage records are not being written');

    restore();
    await waitFor(() => gateway.runtime.usage.pending === 0);
    expect(gateway.runtime.usage.lastSuccessfulFlushAt).toBeNumber();
    const clean = await ready(gateway);
    expect({ status: clean.status, degraded: clean.body.degraded }).toEqual({ status: 200, degraded: undefined });
    expect(gateway.output.join('\n')).toContain('ready again');
    expect(await gateway.runtime.store.listUsage('default')).toHaveLength(1);
  });

  test('usage writes failing without a journal: degraded while memory has room, 503 once the rows fill KEYWAY_USAGE_BUFFER_MAX', async () => {
    const gateway = await gatewayWith({ KEYWAY_USAGE_JOURNAL: 'off', KEYWAY_USAGE_BUFFER_MAX: '2' });
    const restore = failUsageWrites(gateway.runtime.store);
    gateway.runtime.usage.enqueue(usageRow('req_memory_1'));
    await waitFor(() => gateway.runtime.usage.consecutiveFailures >= 3);
    const room = await ready(gateway);
    expect({ status: room.status, checks: room.body.degraded?.map((note) => note.check) }).toEqual({ status: 200, checks: ['usage'] });
    expect(room.body.degraded?.[0]?.detail).toContain('1 of them held in memory only');

    gateway.runtime.usage.enqueue(usageRow('req_memory_2'));
    const full = await ready(gateway);
    expect(full.status).toBe(503);
    expect(full.body.error?.code).toBe('not_ready');
    expect(full.body.error?.message).toMatch(/2 of them held in memory only .*: the most KEYWAY_USAGE_BUFFER_MAX \(2\) allows/);
    expect(full.body.error?.reasons?.map((reason) => reason.check)).toEqual(['usage']);
    expect(gateway.output.join('\n')).toContain('not ready: usage records are not being written');

    restore();
    await waitFor(() => gateway.runtime.usage.pending === 0);
    expect((await ready(gateway)).status).toBe(200);
    expect(await gateway.runtime.store.listUsage('default')).toHaveLength(2);
  });

  test('usage queued for longer than 30 s without a failed write is stuck too: degraded while the journal holds it', async () => {
    // No timed flush during the test: the row just waits, as behind a write that never returns.
    const gateway = await gatewayWith({ KEYWAY_USAGE_FLUSH_MS: '600000' });
    gateway.runtime.usage.enqueue(usageRow('req_waiting_1'));
    const now = await createReadiness(gateway.runtime)();
    expect(now).toEqual({ ready: true, configVersion: expect.any(Number), degraded: [] });
    await gateway.runtime.usage.journaled();
    const later = await createReadiness(gateway.runtime, { now: () => Date.now() + USAGE_STUCK_AFTER_MS + 1_000 })();
    expect(later.ready).toBe(true);
    if (later.ready) expect(later.degraded.map((note) => note.check)).toEqual(['usage']);
    await gateway.runtime.usage.flush();
  });

  test('a store that does not answer: ready, degraded (storage), within the ping timeout even when the ping hangs', async () => {
    const gateway = await gatewayWith();
    const store = gateway.runtime.store;
    const ping = store.ping.bind(store);
    store.ping = async () => {
      throw new Error('connection refused');
    };
    const refused = await ready(gateway);
    expect({ status: refused.status, checks: refused.body.degraded?.map((note) => note.check) }).toEqual({ status: 200, checks: ['storage'] });
    expect(refused.body.degraded?.[0]?.detail).toMatch(/^storage is not reachable: requests are served from the configuration held in memory/);

    store.ping = () => new Promise<void>(() => undefined);
    const started = Date.now();
    const hung = await ready(gateway);
    expect({ status: hung.status, checks: hung.body.degraded?.map((note) => note.check) }).toEqual({ status: 200, checks: ['storage'] });
    expect(Date.now() - started).toBeLessThan(STORE_PING_TIMEOUT_MS + 1_000);

    store.ping = ping;
    const back = await ready(gateway);
    expect({ status: back.status, degraded: back.body.degraded }).toEqual({ status: 200, degraded: undefined });
  });

  test('the disk is measured at most every few seconds', async () => {
    const gateway = await gatewayWith();
    let measured = 0;
    let clock = Date.now();
    const readiness = createReadiness(gateway.runtime, {
      now: () => clock,
      freeBytes: () => {
        measured += 1;
        return 10 * 1024 * 1024;
      },
    });
    const first = await readiness();
    expect(first.ready).toBe(false);
    if (!first.ready) expect(first.problems[0]?.detail).toContain('10 MB free, below KEYWAY_MIN_FREE_DISK_MB (100 MB)');
    const folders = measured;
    expect(folders).toBeGreaterThan(0);
    await readiness();
    await readiness();
    expect(measured).toBe(folders);
    clock += 10_000;
    await readiness();
    expect(measured).toBe(2 * folders);
  });

  test('a nearly full disk: 503 naming the disk and the threshold, without the path', async () => {
    const gateway = await gatewayWith({ KEYWAY_MIN_FREE_DISK_MB: '1000000000' });
    const answer = await ready(gateway);
    expect(answer.status).toBe(503);
    expect(answer.body.error?.message).toMatch(/the disk holding the data is nearly full: \d+ MB free, below KEYWAY_MIN_FREE_DISK_MB \(1000000000 MB\)/);
    expect(answer.body.error?.message).not.toContain(gateway.dataDirectory);
    expect(answer.body.error?.reasons?.map((reason) => reason.check)).toEqual(['disk']);
  });

  test('KEYWAY_MIN_FREE_DISK_MB=0 turns the disk check off', async () => {
    const gateway = await gatewayWith({ KEYWAY_MIN_FREE_DISK_MB: '0' });
    expect((await ready(gateway)).status).toBe(200);
  });

  test('a stored provider key that cannot be decrypted: 503 until the key is removed', async () => {
    const gateway = await gatewayWith();
    expect((await ready(gateway)).status).toBe(200);
    const [added] = await addProviderKeys(gateway, [{ name: 'openai', api_key: 'sk-proj-ReadinessTestKey000000000000000001' }]);
    const id = String(added?.key_id);
    const backends = gateway.runtime.plugins.cryptoBackends as Map<string, CryptoBackend>;
    const local = backends.get('local') as CryptoBackend;
    // As if the key had been sealed under another master key: decryption fails.
    backends.set('local', { ...local, decrypt: async () => Promise.reject(new Error('Decryption failed')) });
    const listing = gateway.runtime.snapshots.current.keysById.get(id);
    if (listing === undefined) throw new Error('the added key is not in the snapshot');
    // The background models check may have decrypted it already.
    gateway.runtime.vault.forget(id);
    await expect(Promise.resolve(gateway.runtime.vault.credential(listing))).rejects.toThrow(/could not be decrypted/);
    backends.set('local', local);

    const answer = await ready(gateway);
    expect(answer.status).toBe(503);
    expect(answer.body.error?.message).toContain('1 stored provider key(s) could not be decrypted; check the master key');
    expect(answer.body.error?.message).not.toContain(id);

    const removed = await call(gateway, 'DELETE', `/v1/providers/keys/${id}`);
    expect(removed.status).toBeLessThan(300);
    expect((await ready(gateway)).status).toBe(200);
  });

  test('a master key check that fails at run time: 503 naming the version', async () => {
    const gateway = await gatewayWith();
    const backends = gateway.runtime.plugins.cryptoBackends as Map<string, CryptoBackend>;
    const local = backends.get('local') as CryptoBackend;
    backends.set('local', { ...local, decrypt: async () => Promise.reject(new Error('Decryption failed')) });
    const answer = await ready(gateway);
    expect(answer.status).toBe(503);
    expect(answer.body.error?.message).toContain('the master key check failed for v1: stored provider keys cannot be decrypted');
    expect(answer.body.error?.reasons?.map((reason) => reason.check)).toEqual(['master_key']);
  });
});
