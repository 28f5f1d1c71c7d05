// The fair-share limiter on its own: the free path is a synchronous counter check, waiters are
// served first come first served within their account and their upstream, a wait ends in the
// caller's slots or in gateway_busy, and every way out gives the slots back.

import { describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import { UpstreamSlots, type SlotPool } from '../../core/lifecycle/upstream-slots.ts';
import type { ProviderAdapter, RouteCandidate } from '../../core/spec/plugin.ts';

function slots(perAccount: number, perUpstream: number, queueTimeoutMs = 10_000): UpstreamSlots {
  return new UpstreamSlots({ perAccount, perUpstream, queueTimeoutMs, connections: 100 });
}

/** A waiter's promise, with what it settled to once it has. */
function watch(promise: Promise<KeywayError | undefined>) {
  const state: { settled: boolean; refusal: KeywayError | undefined } = { settled: false, refusal: undefined };
  void promise.then((refusal) => {
    state.settled = true;
    state.refusal = refusal;
  });
  return state;
}

/** Lets settled promises run their continuations. */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function fill(limiter: UpstreamSlots, account: SlotPool, upstream: SlotPool, count: number): void {
  for (let index = 0; index < count; index++) expect(limiter.tryAcquire(account, upstream)).toBe(true);
}

const adapter = (name: string, defaultBaseUrl: string) => ({ name, defaultBaseUrl }) as unknown as ProviderAdapter;
const candidate = (provider: string, baseUrl?: string) =>
  ({ provider, model: 'm', key: { id: `key-${provider}`, settings: baseUrl === undefined ? {} : { base_url: baseUrl } } }) as unknown as RouteCandidate;

describe('the free path', () => {
  test('tryAcquire is a synchronous counter check; enter returns the release function itself, not a promise', () => {
    const limiter = slots(2, 4);
    const entered = limiter.enter('acc_a', candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'), 1000, undefined);
    expect(entered).not.toBeInstanceOf(Promise);
    expect(typeof entered).toBe('function');
    expect(limiter.report().in_flight).toBe(1);
    (entered as () => void)();
    (entered as () => void)();
    // Idempotent: a second call gives nothing back twice.
    expect(limiter.report().in_flight).toBe(0);
    expect(limiter.account('acc_a').inFlight).toBe(0);
  });

  test('one account at its share does not slow another account on the same upstream', () => {
    const limiter = slots(2, 10);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    const b = limiter.account('acc_b');
    fill(limiter, a, upstream, 2);
    expect(limiter.tryAcquire(a, upstream)).toBe(false);
    expect(limiter.tryAcquire(b, upstream)).toBe(true);
    expect(upstream.inFlight).toBe(3);
  });

  test('a newcomer does not jump the queue: with anyone waiting, the free path is closed', async () => {
    const limiter = slots(1, 10);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    fill(limiter, a, upstream, 1);
    const waiting = watch(limiter.acquire(a, upstream, 1000));
    limiter.release(a, upstream);
    // The freed slot went to the waiter, not to whoever asks next.
    expect(limiter.tryAcquire(a, upstream)).toBe(false);
    await turn();
    expect(waiting.settled).toBe(true);
    expect(waiting.refusal).toBeUndefined();
  });
});

describe('upstream pools', () => {
  test('keyed by origin: a key base_url, else KEYWAY_<PROVIDER>_BASE_URL, else the default address; never a path or credentials', () => {
    const limiter = new UpstreamSlots({ perAccount: 1, perUpstream: 1, queueTimeoutMs: 1, env: { KEYWAY_BETA_BASE_URL: 'http://127.0.0.1:9000/v1' } });
    const alpha = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    expect(alpha.name).toBe('https://alpha.example');
    expect(limiter.upstream(candidate('beta'), adapter('beta', 'https://beta.example/v1')).name).toBe('http://127.0.0.1:9000');
    const custom = limiter.upstream(candidate('alpha', 'https://user:secret@models.internal:8443/deep/path'), adapter('alpha', 'https://alpha.example/v1'));
    expect(custom.name).toBe('https://models.internal:8443');
    // Two providers at one origin share its pool.
    const same = limiter.upstream(candidate('gamma', 'https://alpha.example/other'), adapter('gamma', 'https://gamma.example/v1'));
    expect(same).toBe(alpha);
    expect([...alpha.providers].sort()).toEqual(['alpha', 'gamma']);
    expect(JSON.stringify(limiter.report())).not.toContain('secret');
  });
});

describe('waiting in line', () => {
  test('waiters of one account are served first come, first served', async () => {
    const limiter = slots(2, 100);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    fill(limiter, a, upstream, 2);
    const order: number[] = [];
    const waiters = [1, 2, 3, 4].map((index) => limiter.acquire(a, upstream, 5000).then(() => void order.push(index)));
    expect(a.waiting).toBe(4);
    limiter.release(a, upstream);
    await turn();
    expect(order).toEqual([1]);
    limiter.release(a, upstream);
    limiter.release(a, upstream);
    await turn();
    expect(order).toEqual([1, 2, 3]);
    limiter.release(a, upstream);
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(a.inFlight).toBe(2);
    expect(upstream.inFlight).toBe(2);
  });

  test('an upstream at its share serves accounts in arrival order', async () => {
    const limiter = slots(10, 1);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const [a, b, c] = ['acc_a', 'acc_b', 'acc_c'].map((id) => limiter.account(id)) as [SlotPool, SlotPool, SlotPool];
    fill(limiter, a, upstream, 1);
    const order: string[] = [];
    const waitB = limiter.acquire(b, upstream, 5000).then(() => void order.push('b'));
    const waitC = limiter.acquire(c, upstream, 5000).then(() => void order.push('c'));
    const waitA = limiter.acquire(a, upstream, 5000).then(() => void order.push('a'));
    // Waiting for the upstream, each already holds its account's slot.
    expect([a.inFlight, b.inFlight, c.inFlight]).toEqual([2, 1, 1]);
    limiter.release(a, upstream);
    await waitB;
    limiter.release(b, upstream);
    await waitC;
    limiter.release(c, upstream);
    await waitA;
    expect(order).toEqual(['b', 'c', 'a']);
  });

  test('a queued account cannot fill an upstream queue beyond its share: its extra waiters wait at the account', () => {
    const limiter = slots(2, 1);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    const b = limiter.account('acc_b');
    fill(limiter, b, upstream, 1);
    for (let index = 0; index < 5; index++) void limiter.acquire(a, upstream, 5000);
    expect(upstream.waiting).toBe(2);
    expect(a.waiting).toBe(3);
    // Account B's next call is second in the upstream's line, not seventh.
    void limiter.acquire(b, upstream, 5000);
    expect(upstream.waiting).toBe(3);
  });
});

describe('timeouts and departures', () => {
  test('a wait past the queue timeout is refused with gateway_busy (503, Retry-After), no provider failure reason', async () => {
    const limiter = slots(1, 10, 30);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    fill(limiter, a, upstream, 1);
    const started = performance.now();
    const refusal = await limiter.acquire(a, upstream, 30);
    const waited = performance.now() - started;
    expect(refusal).toBeInstanceOf(KeywayError);
    expect(refusal?.code).toBe('gateway_busy');
    expect(refusal?.status).toBe(503);
    expect(refusal?.reason).toBeUndefined();
    expect(refusal?.retryAfterSeconds).toBeGreaterThan(0);
    expect(refusal?.extra).toEqual({ limit_scope: 'account' });
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(waited).toBeLessThan(500);
    expect(a.waiting).toBe(0);
    const report = limiter.report();
    expect(report.timed_out_total).toBe(1);
    expect(report.queued).toBe(0);
    expect(report.accounts[0]).toMatchObject({ name: 'acc_a', in_flight: 1, queued: 0, queued_total: 1, timed_out_total: 1 });
  });

  test('enter takes the shorter of the queue timeout and the attempt deadline', async () => {
    const limiter = slots(1, 10, 5000);
    const alpha = adapter('alpha', 'https://alpha.example/v1');
    const release = limiter.enter('acc_a', candidate('alpha'), alpha, 5000, undefined);
    expect(typeof release).toBe('function');
    const started = performance.now();
    const outcome = await limiter.enter('acc_a', candidate('alpha'), alpha, 40, undefined);
    expect(outcome).toBeInstanceOf(KeywayError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test('timing out while waiting for the upstream gives the account slot back, to the next in the account line', async () => {
    const limiter = slots(1, 1, 10_000);
    const alpha = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const beta = limiter.upstream(candidate('beta'), adapter('beta', 'https://beta.example/v1'));
    const a = limiter.account('acc_a');
    const b = limiter.account('acc_b');
    fill(limiter, b, alpha, 1);
    const first = watch(limiter.acquire(a, alpha, 30));
    expect(a.inFlight).toBe(1);
    expect(alpha.waiting).toBe(1);
    const second = watch(limiter.acquire(a, beta, 5000));
    expect(a.waiting).toBe(1);
    await Bun.sleep(80);
    expect(first.refusal?.code).toBe('gateway_busy');
    expect(first.refusal?.extra).toEqual({ limit_scope: 'upstream' });
    expect(second.settled).toBe(true);
    expect(second.refusal).toBeUndefined();
    expect(a.inFlight).toBe(1);
    expect(beta.inFlight).toBe(1);
    expect(alpha.inFlight).toBe(1);
    expect(alpha.waiting).toBe(0);
  });

  test('a client that leaves while queued is out of line at once, and the line keeps its order', async () => {
    const limiter = slots(1, 10);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    fill(limiter, a, upstream, 1);
    const client = new AbortController();
    const leaving = watch(limiter.acquire(a, upstream, 5000, client.signal));
    const staying = watch(limiter.acquire(a, upstream, 5000));
    client.abort();
    await turn();
    expect(leaving.refusal?.code).toBe('upstream_error');
    expect(a.waiting).toBe(1);
    limiter.release(a, upstream);
    await turn();
    expect(staying.settled).toBe(true);
    expect(staying.refusal).toBeUndefined();
    expect(limiter.report().abandoned_total).toBe(1);
  });

  test('an already-aborted signal is refused without queueing', async () => {
    const limiter = slots(1, 10);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    fill(limiter, a, upstream, 1);
    const refusal = await limiter.acquire(a, upstream, 5000, AbortSignal.abort());
    expect(refusal?.code).toBe('upstream_error');
    expect(a.waiting).toBe(0);
  });

  test('many waiters timing out leave no slot taken and no queue behind', async () => {
    const limiter = slots(3, 5, 20);
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const accounts = ['acc_a', 'acc_b', 'acc_c'].map((id) => limiter.account(id));
    const releases: Array<() => void> = [];
    for (const account of accounts)
      for (let index = 0; index < 2; index++) if (limiter.tryAcquire(account, upstream)) releases.push(() => limiter.release(account, upstream));
    const outcomes = await Promise.all(accounts.flatMap((account) => Array.from({ length: 20 }, () => limiter.acquire(account, upstream, 20))));
    expect(outcomes.every((outcome) => outcome?.code === 'gateway_busy')).toBe(true);
    for (const release of releases) release();
    expect(upstream.inFlight).toBe(0);
    expect(accounts.map((account) => account.inFlight)).toEqual([0, 0, 0]);
    expect(upstream.waiting + accounts.reduce((sum, account) => sum + account.waiting, 0)).toBe(0);
    const report = limiter.report();
    expect(report.in_flight).toBe(0);
    expect(report.queued).toBe(0);
    expect(report.timed_out_total).toBe(60);
  });
});

describe('the report', () => {
  test('counts in flight, queued and waits; the wait percentiles cover attempts that waited', async () => {
    let clock = 0;
    const limiter = new UpstreamSlots({ perAccount: 1, perUpstream: 10, queueTimeoutMs: 60_000, connections: 64, now: () => clock });
    const upstream = limiter.upstream(candidate('alpha'), adapter('alpha', 'https://alpha.example/v1'));
    const a = limiter.account('acc_a');
    expect(limiter.report().wait_ms).toEqual({ window_seconds: 60, samples: 0, p50: null, p99: null, max: null });
    fill(limiter, a, upstream, 1);
    const waits = [10, 20, 30, 40, 400];
    const pending = waits.map(() => limiter.acquire(a, upstream, 60_000));
    const during = limiter.report();
    expect(during).toMatchObject({ in_flight: 1, queued: 5, queued_total: 5, limits: { upstream_connections: 64, per_account: 1, per_upstream: 10 } });
    expect(during.upstreams[0]).toMatchObject({ name: 'https://alpha.example', in_flight: 1, queued: 0, providers: ['alpha'] });
    for (const [index, wait] of waits.entries()) {
      clock = wait;
      limiter.release(a, upstream);
      await pending[index];
    }
    const after = limiter.report();
    expect(after.wait_ms).toEqual({ window_seconds: 60, samples: 5, p50: 30, p99: 400, max: 400 });
    expect(after.acquired_total).toBe(6);
    clock = 120_000;
    expect(limiter.report().wait_ms.samples).toBe(0);
  });
});
