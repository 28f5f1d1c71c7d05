// Pure unit tests of the routing core: backoff, retry policy, the sliding window and the health
// monitor's state machine on an injected clock. No HTTP, no simulators.

import { describe, expect, test } from 'bun:test';
import { backoffDelay, DEFAULT_FALLBACK_REASONS, retryPolicyFor } from '../../core/lifecycle/attempts.ts';
import { ManualClock } from '../../core/clock.ts';
import { loadConfig } from '../../core/config.ts';
import type { ProviderFigures } from '../../core/routing/health/figures.ts';
import { DEFAULT_HEALTH_POLICY, HealthMonitor, type HealthPolicy } from '../../core/routing/health/monitor.ts';
import { SlidingWindow } from '../../core/routing/health/window.ts';
import type { ProviderKeyRecord } from '../../core/spec/plugin.ts';

describe('backoffDelay', () => {
  test('jitter stays within [base·2^pass / 2, base·2^pass]', () => {
    expect(backoffDelay(0, undefined, () => 0)).toBe(125);
    expect(backoffDelay(0, undefined, () => 1)).toBe(250);
    for (let step = 0; step < 100; step++) {
      const random = step / 100;
      const delay = backoffDelay(2, undefined, () => random);
      expect(delay).toBeGreaterThanOrEqual(500);
      expect(delay).toBeLessThanOrEqual(1_000);
    }
  });

  test('grows exponentially with each pass, up to a ceiling', () => {
    const delays = [0, 1, 2, 3, 4].map((pass) => backoffDelay(pass, undefined, () => 1));
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000]);
    expect(backoffDelay(10, undefined, () => 1)).toBe(8_000);
    expect(backoffDelay(30, undefined, () => 0)).toBe(4_000);
  });

  test("honours the provider's Retry-After when it is longer", () => {
    expect(backoffDelay(0, 3, () => 0.5)).toBe(3_000);
    expect(backoffDelay(0, 0.2, () => 1)).toBe(250);
    expect(backoffDelay(3, 1, () => 1)).toBe(2_000);
  });
});

describe('retryPolicyFor', () => {
  const config = loadConfig({ KEYWAY_TOTAL_TIMEOUT_MS: '90000' });

  test('defaults: the four fallback reasons, no retries, one attempt per candidate, the configured deadline', () => {
    expect(retryPolicyFor({}, config, 3)).toEqual({ reasons: DEFAULT_FALLBACK_REASONS, retries: 0, maxAttempts: 3, totalTimeoutMs: 90_000 });
    expect(DEFAULT_FALLBACK_REASONS).toEqual(['rate_limit', 'timeout', 'server_error', 'model_not_available']);
  });

  test('retries multiply the attempts over the candidates; max_attempts and the ceiling cap them', () => {
    expect(retryPolicyFor({ retries: 2 }, config, 3).maxAttempts).toBe(9);
    expect(retryPolicyFor({ retries: 2, max_attempts: 4 }, config, 3).maxAttempts).toBe(4);
    expect(retryPolicyFor({ retries: 5 }, config, 10).maxAttempts).toBe(20);
    expect(retryPolicyFor({ max_attempts: 50 }, config, 1).maxAttempts).toBe(20);
  });

  test('retries are clamped to 0–5 and whole; nonsense values fall back to the defaults', () => {
    expect(retryPolicyFor({ retries: 9 }, config, 1).retries).toBe(5);
    expect(retryPolicyFor({ retries: 1.7 }, config, 1).retries).toBe(1);
    expect(retryPolicyFor({ retries: -1 }, config, 1).retries).toBe(0);
    expect(retryPolicyFor({ total_timeout_ms: Number.NaN }, config, 1).totalTimeoutMs).toBe(90_000);
  });

  test("the request's reasons and total deadline win", () => {
    const policy = retryPolicyFor({ fallback_reasons: ['rate_limit'], total_timeout_ms: 1_500 }, config, 2);
    expect(policy.reasons).toEqual(['rate_limit']);
    expect(policy.totalTimeoutMs).toBe(1_500);
  });
});

describe('SlidingWindow', () => {
  test('an empty window is 100% successful and has no latency', () => {
    const window = new SlidingWindow(10, 1_000);
    expect(window.count(0)).toBe(0);
    expect(window.successRate(0)).toBe(100);
    expect(window.latencyPercentile(0, 50)).toBeUndefined();
  });

  test('keeps at most `capacity` samples, dropping the oldest (and its failure)', () => {
    const window = new SlidingWindow(3, 60_000);
    window.record({ at: 0, ok: false, latencyMs: 1 });
    expect(window.successRate(0)).toBe(0);
    for (let index = 1; index <= 3; index++) window.record({ at: index, ok: true, latencyMs: 1 });
    expect(window.count(3)).toBe(3);
    expect(window.successRate(3)).toBe(100);
  });

  test('expires samples older than the span', () => {
    const window = new SlidingWindow(10, 1_000);
    window.record({ at: 0, ok: false, latencyMs: 5 });
    window.record({ at: 500, ok: true, latencyMs: 5 });
    expect(window.successRate(1_000)).toBe(50);
    expect(window.count(1_001)).toBe(1);
    expect(window.successRate(1_001)).toBe(100);
    expect(window.count(1_501)).toBe(0);
  });

  test('percentiles are over the successful calls only (nearest rank)', () => {
    const window = new SlidingWindow(50, 60_000);
    for (let latency = 10; latency <= 100; latency += 10) window.record({ at: 0, ok: true, latencyMs: latency });
    window.record({ at: 0, ok: false, latencyMs: 99_999 });
    expect(window.latencyPercentile(0, 50)).toBe(50);
    expect(window.latencyPercentile(0, 95)).toBe(100);
    expect(window.latencyPercentile(0, 0)).toBe(10);
    expect(window.successRate(0)).toBeCloseTo((10 / 11) * 100, 10);
    window.clear();
    expect(window.count(0)).toBe(0);
  });
});

const key = (id: string, overrides: Partial<ProviderKeyRecord> = {}): ProviderKeyRecord => ({
  id,
  provider: 'openai',
  owner: 'account',
  accountId: 'acme',
  organizationId: undefined,
  settings: {},
  status: 'active',
  weight: 1,
  ...overrides,
});

function monitor(policy: Partial<HealthPolicy> = {}) {
  const clock = new ManualClock(1_000_000);
  const rejected: string[] = [];
  const restored: string[] = [];
  const health = new HealthMonitor({
    clock,
    policyFor: () => ({ ...DEFAULT_HEALTH_POLICY, ...policy }),
    onKeyRejected: (record) => void rejected.push(record.id),
    onKeyRestored: (record) => void restored.push(record.id),
  });
  return { clock, health, rejected, restored };
}

const ok = { ok: true, latencyMs: 10 };
const failed = { ok: false, reason: 'server_error' as const, latencyMs: 10 };

describe('HealthMonitor state machine', () => {
  const policy = { auto_disable: true, health_threshold: 95, check_interval: 60, min_samples: 4 };

  test('not judged below min_samples; disabled once the success rate is under the threshold', () => {
    const { health } = monitor(policy);
    const record = key('k1');
    for (let index = 0; index < 3; index++) health.record(record, failed);
    expect(health.report('openai', [record]).status).toBe('healthy');
    health.record(record, ok);
    const report = health.report('openai', [record]);
    expect(report.status).toBe('disabled');
    expect(report.success_rate).toBe(25);
    expect(report.issues[0]).toContain('success rate 25% is below 95%');
    expect(health.isAvailable(record)).toBe(false);
  });

  test('without auto_disable a provider is degraded, stays routable, and heals when the rate recovers', () => {
    const { health } = monitor({ ...policy, auto_disable: false, health_threshold: 90 });
    const record = key('k1');
    for (let index = 0; index < 4; index++) health.record(record, failed);
    expect(health.report('openai', [record]).status).toBe('degraded');
    expect(health.isAvailable(record)).toBe(true);
    for (let index = 0; index < 36; index++) health.record(record, ok);
    expect(health.report('openai', [record]).status).toBe('healthy');
  });

  test('median latency over latency_threshold disables too', () => {
    const { health } = monitor({ ...policy, latency_threshold: 100 });
    const record = key('k1');
    for (const latencyMs of [50, 150, 200, 250]) health.record(record, { ok: true, latencyMs });
    const report = health.report('openai', [record]);
    expect(report.status).toBe('disabled');
    expect(report.issues[0]).toContain('median latency 150 ms is above 100 ms');
  });

  test('half-open after check_interval; 3 successes → healthy with a fresh window', () => {
    const { clock, health } = monitor(policy);
    const record = key('k1');
    for (let index = 0; index < 4; index++) health.record(record, failed);
    clock.advance(59_999);
    expect(health.isAvailable(record)).toBe(false);
    clock.advance(1);
    expect(health.isAvailable(record)).toBe(true);
    expect(health.report('openai', [record]).status).toBe('recovering');
    health.record(record, ok);
    health.record(record, ok);
    expect(health.report('openai', [record]).status).toBe('recovering');
    health.record(record, ok);
    const report = health.report('openai', [record]);
    expect(report.status).toBe('healthy');
    expect(report.requests).toBe(0);
    expect(report.issues).toEqual([]);
  });

  test('a failure while recovering disables again and restarts the wait', () => {
    const { clock, health } = monitor(policy);
    const record = key('k1');
    for (let index = 0; index < 4; index++) health.record(record, failed);
    clock.advance(60_000);
    expect(health.isAvailable(record)).toBe(true);
    health.record(record, ok);
    health.record(record, failed);
    expect(health.report('openai', [record]).issues[0]).toContain('failed again while recovering (server_error)');
    clock.advance(59_000);
    expect(health.isAvailable(record)).toBe(false);
  });

  test('a successful probe moves a disabled provider to recovering at once', () => {
    const { health } = monitor(policy);
    const record = key('k1');
    for (let index = 0; index < 4; index++) health.record(record, failed);
    health.recordProbe(record, true, undefined);
    expect(health.report('openai', [record]).status).toBe('recovering');
  });

  test("client errors say nothing about the provider's health", () => {
    const { health } = monitor(policy);
    const record = key('k1');
    for (let index = 0; index < 10; index++) health.record(record, { ok: false, reason: 'context_length_exceeded', latencyMs: 1 });
    health.record(record, { ok: false, reason: 'invalid_request', latencyMs: 1 });
    // A mistyped model: the upstream's 404 model_not_found is the client's, not the provider's.
    for (let index = 0; index < 10; index++) health.record(record, { ok: false, reason: 'model_not_available', latencyMs: 1 });
    health.record(record, { ok: false, reason: 'content_filtered', latencyMs: 1 });
    const report = health.report('openai', [record]);
    expect(report.status).toBe('healthy');
    expect(report.requests).toBe(0);
    expect(health.isAvailable(record)).toBe(true);
    // Neither success nor failure, for the key either: a typo neither lowers its rate nor hides a real failure.
    health.record(record, ok);
    health.record(record, failed);
    expect(health.report('openai', [record]).keys[0]?.success_rate).toBe(50);
  });

  test('auto_disable turned off: a recovering provider is not disabled by a failure', () => {
    const current: HealthPolicy = { ...DEFAULT_HEALTH_POLICY, ...policy };
    const clock = new ManualClock(1_000_000);
    const health = new HealthMonitor({ clock, policyFor: () => current });
    const record = key('k1');
    for (let index = 0; index < 4; index++) health.record(record, failed);
    clock.advance(60_000);
    expect(health.isAvailable(record)).toBe(true);
    expect(health.report('openai', [record]).status).toBe('recovering');
    current.auto_disable = false;
    health.record(record, failed);
    expect(health.report('openai', [record]).status).toBe('degraded');
    expect(health.isAvailable(record)).toBe(true);
    expect(health.unavailableReason(record)).toBeUndefined();
  });

  test('auto_disable turned off: a disabled provider is released at once; an operator-disabled key stays out', () => {
    const current: HealthPolicy = { ...DEFAULT_HEALTH_POLICY, ...policy };
    const clock = new ManualClock(1_000_000);
    const health = new HealthMonitor({ clock, policyFor: () => current });
    const record = key('k1');
    const switchedOff = key('k2', { status: 'disabled' });
    for (let index = 0; index < 4; index++) health.record(record, failed);
    expect(health.isAvailable(record)).toBe(false);
    current.auto_disable = false;
    expect(health.unavailableReason(record)).toBeUndefined();
    expect(health.isAvailable(record)).toBe(true);
    expect(health.isAvailable(switchedOff)).toBe(false);
    // Judged as the flag now says: degraded while the window shows the problem, healthy once it is gone.
    expect(health.report('openai', [record]).status).toBe('degraded');
    for (let index = 0; index < 100; index++) health.record(record, ok);
    expect(health.report('openai', [record]).status).toBe('healthy');
  });

  test('health is kept per account and provider', () => {
    const { health } = monitor(policy);
    const mine = key('k1');
    const theirs = key('k2', { accountId: 'other' });
    const platform = key('k3', { accountId: null, owner: 'platform' });
    for (let index = 0; index < 4; index++) health.record(mine, failed);
    expect(health.isAvailable(mine)).toBe(false);
    expect(health.isAvailable(theirs)).toBe(true);
    expect(health.isAvailable(platform)).toBe(true);
  });
});

describe('HealthMonitor keys', () => {
  test('an auth error takes the key out once (one callback) until it works again', () => {
    const { health, rejected, restored } = monitor();
    const record = key('k1');
    health.record(record, { ok: false, reason: 'auth_error', latencyMs: 1 });
    health.record(record, { ok: false, reason: 'auth_error', latencyMs: 1 });
    expect(rejected).toEqual(['k1']);
    expect(health.isAvailable(record)).toBe(false);
    const report = health.report('openai', [record]);
    expect(report.keys[0]?.status).toBe('invalid');
    expect(report.issues.some((issue) => issue.includes('k1 was rejected'))).toBe(true);
    // Auth errors are the key's fault, not the provider's: they count in the key's window only.
    expect(report.requests).toBe(0);
    expect(report.keys[0]?.success_rate).toBe(0);
    health.recordProbe(record, true, undefined);
    expect(restored).toEqual(['k1']);
    expect(health.isAvailable(record)).toBe(true);
  });

  test('a probe that is refused flags the key; a stored invalid status keeps it out', () => {
    const { health, rejected } = monitor();
    health.recordProbe(key('k1'), false, 'auth_error');
    expect(rejected).toEqual(['k1']);
    expect(health.isAvailable(key('k1'))).toBe(false);
    expect(health.isAvailable(key('k2', { status: 'invalid' }))).toBe(false);
    expect(health.isAvailable(key('k3', { status: 'disabled' }))).toBe(false);
  });

  test('a rate limit cools the key for its Retry-After (at least 1 s), without taking it out', () => {
    const { clock, health } = monitor();
    const record = key('k1');
    health.record(record, { ok: false, reason: 'rate_limit', retryAfterSeconds: 5, latencyMs: 1 });
    expect(health.isCoolingDown(record)).toBe(true);
    expect(health.isAvailable(record)).toBe(true);
    const report = health.report('openai', [record]);
    expect(report.keys[0]).toMatchObject({ status: 'rate_limited', cooldown_until: new Date(1_005_000).toISOString() });
    clock.advance(4_999);
    expect(health.isCoolingDown(record)).toBe(true);
    clock.advance(1);
    expect(health.isCoolingDown(record)).toBe(false);
    health.record(record, { ok: false, reason: 'rate_limit', latencyMs: 1 });
    clock.advance(999);
    expect(health.isCoolingDown(record)).toBe(true);
    clock.advance(1);
    expect(health.isCoolingDown(record)).toBe(false);
  });

  test('rate_limit_remaining is the sum over the keys that reported one', () => {
    const { health } = monitor();
    health.record(key('k1'), { ...ok, rateLimitRemaining: 40 });
    health.record(key('k2'), { ...ok, rateLimitRemaining: 2 });
    expect(health.report('openai', [key('k1'), key('k2'), key('k3')]).rate_limit_remaining).toBe(42);
  });

  test('probes are due every check_interval per key', () => {
    const { clock, health } = monitor({ check_interval: 30 });
    const record = key('k1');
    expect(health.probeDue(record)).toBe(true);
    health.recordProbe(record, true, undefined);
    clock.advance(29_999);
    expect(health.probeDue(record)).toBe(false);
    clock.advance(1);
    expect(health.probeDue(record)).toBe(true);
  });
});

/** Another worker's window of a provider: `requests` calls of which `failures` failed. */
const otherWorker = (requests: number, failures: number): ProviderFigures => ({
  window: { requests, failures, latencies: Array.from({ length: requests - failures }, () => 10) },
  rateLimit: null,
  keys: {},
});

// QA (seed walk-through) F1: GET /v1/providers/health showed the answering worker's verdict from its
// last call: `degraded`, "success rate 81% is below 95% over the last 27 calls", beside
// `success_rate: 100, requests: 0` once the failures had left the window, and `degraded` and `healthy`
// from two workers in turn. Healthy or degraded is now judged from the figures the answer shows.
describe('the health answer judges what it shows', () => {
  const policy = { auto_disable: false, health_threshold: 95, min_samples: 4 };

  test('a degraded provider whose failures have left the window is reported healthy, with no issue', () => {
    const { clock, health } = monitor(policy);
    const record = key('k1');
    for (const outcome of [failed, ok, ok, ok]) health.record(record, outcome);
    expect(health.report('openai', [record])).toMatchObject({ status: 'degraded', success_rate: 75, requests: 4 });
    // No call since: the window (5 minutes) empties.
    clock.advance(5 * 60_000 + 1_000);
    const report = health.report('openai', [record]);
    const shown = { status: report.status, success_rate: report.success_rate, requests: report.requests, issues: report.issues };
    expect(shown).toEqual({ status: 'healthy', success_rate: 100, requests: 0, issues: [] });
  });

  test("another worker's failures make the instance degraded, though this worker saw too few calls to judge", () => {
    const { health } = monitor(policy);
    const record = key('k1');
    health.record(record, ok);
    const report = health.report('openai', [record], [otherWorker(11, 5)]);
    expect(report.status).toBe('degraded');
    expect(report.success_rate).toBe(58.33);
    expect(report.issues).toEqual(['success rate 58.33% is below 95% over the last 12 calls']);
  });

  test('every worker answers the same: a local problem the combined window does not show is not reported', () => {
    const { health } = monitor(policy);
    const record = key('k1');
    for (const outcome of [failed, ok, ok, ok]) health.record(record, outcome);
    const report = health.report('openai', [record], [otherWorker(40, 0)]);
    expect({ status: report.status, issues: report.issues }).toEqual({ status: 'healthy', issues: [] });
  });

  test('a disabled or recovering circuit is reported as it is (it decides routing)', () => {
    const { clock, health } = monitor({ ...policy, auto_disable: true, check_interval: 60 });
    const record = key('k1');
    for (const outcome of [failed, ok, ok, ok]) health.record(record, outcome);
    expect(health.report('openai', [record], [otherWorker(40, 0)]).status).toBe('disabled');
    clock.advance(60_000);
    expect(health.report('openai', [record]).status).toBe('recovering');
  });
});
