// Provider and key health from real traffic and free probes. Per (account, provider): a sliding
// window of outcomes and a state machine healthy → disabled → recovering → healthy driven by the
// account's health-check policy. Per key: cooldowns after rate limits, and removal after auth errors.

import type { Clock } from '../../clock.ts';
import { SlidingWindow } from './window.ts';
import type { ProviderKeyRecord } from '../../spec/plugin.ts';
import type { FailureReason } from '../../spec/vocabulary.ts';

export interface HealthPolicy {
  auto_disable: boolean;
  /** Minimum success rate, in percent. */
  health_threshold: number;
  /** Maximum median latency, in milliseconds. */
  latency_threshold: number;
  /** Seconds between probes, and how long a disabled provider waits before a half-open trial. */
  check_interval: number;
  /** Calls needed in the window before the monitor judges a provider. */
  min_samples: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  auto_disable: false,
  health_threshold: 90,
  latency_threshold: 30_000,
  check_interval: 60,
  min_samples: 10,
};

/**
 * Upstream answers that are the client's fault: the request was wrong (400, 413, 422), asked for a
 * model the provider does not have (404 model_not_found: a mistyped name), or asked for content the
 * provider refuses. The provider answered them correctly, so they count as neither success nor
 * failure, for the key or the provider (docs/routing.md, "Provider health").
 */
const CLIENT_FAULT_REASONS: ReadonlySet<FailureReason> = new Set<FailureReason>([
  'invalid_request',
  'context_length_exceeded',
  'content_filtered',
  'model_not_available',
]);

export type HealthState = 'healthy' | 'degraded' | 'disabled' | 'recovering';

/** Successes in a row a recovering provider needs before it counts as healthy again. */
const RECOVERY_SUCCESSES = 3;
const WINDOW_CAPACITY = 200;
const WINDOW_SPAN_MS = 5 * 60_000;
const MEDIAN_INTERVAL_MS = 1000;

export interface CallOutcome {
  ok: boolean;
  reason?: FailureReason | undefined;
  latencyMs: number;
  rateLimitRemaining?: number | undefined;
  retryAfterSeconds?: number | undefined;
}

interface ProviderHealthState {
  /** `account\u0000provider`: the same on every instance, so a circuit change can be told to the others. */
  scope: string;
  window: SlidingWindow;
  state: HealthState;
  changedAt: number;
  recoverySuccesses: number;
  reason: string | undefined;
  rateLimitRemaining: number | undefined;
  lastError: string | undefined;
  /** The median is a sort of the window: judged at most once a second, not on every call. */
  medianLatency: number | undefined;
  medianCheckedAt: number;
}

interface KeyHealthState {
  window: SlidingWindow;
  cooldownUntil: number;
  authRejected: boolean;
  rateLimitRemaining: number | undefined;
  lastProbeAt: number;
  lastProbeOk: boolean | undefined;
}

/** Why a key cannot be routed to now, for an error message. */
export interface UnavailableReason {
  reason: string;
  /** Seconds until it may be tried again, when known (a disabled provider's next trial). */
  retryAfterSeconds?: number;
  /** Its provider refused the key: only a fixed or replaced key, found by a re-check, brings it back. */
  rejected?: true;
}

export interface ProviderHealthReport {
  name: string;
  /**
   * The circuit's state; `degraded` too when every key that can serve is cooling down after a 429
   * (still tried); `unavailable` when the circuit is closed but no key can serve (refused or not active).
   */
  status: HealthState | 'unavailable';
  /** When every key that can serve is cooling down: when the first cool-down ends (ISO 8601); else null. */
  cooldown_until: string | null;
  latency_ms: number | null;
  latency_p95_ms: number | null;
  success_rate: number;
  requests: number;
  rate_limit_remaining: number | null;
  issues: string[];
  keys: Array<{
    key_id: string;
    status: string;
    success_rate: number;
    latency_ms: number | null;
    rate_limit_remaining: number | null;
    cooldown_until: string | null;
  }>;
}

export interface HealthMonitorOptions {
  clock: Clock;
  policyFor(accountId: string | null): HealthPolicy;
  /** Called once when a key's credentials are refused, so the core can persist the flag. */
  onKeyRejected?(key: ProviderKeyRecord): void;
  /** Called when a key flagged invalid works again (a probe or a call succeeded). */
  onKeyRestored?(key: ProviderKeyRecord): void;
  /** Called with what the other instances should know (core/routing/health/shared.ts sends it); `apply` takes theirs. */
  onShare?(event: HealthEvent): void;
  /**
   * Why a key cannot be used on this instance whatever its health (sealed under a master key version
   * this instance does not have: KeyVault.unusableHere); undefined when it can. Called for every key
   * routing considers, so it must be cheap.
   */
  unusableHere?(key: ProviderKeyRecord): string | undefined;
}

/**
 * What one instance tells the others: a key's cooldown, and a provider's circuit opening or closing.
 * Windows and half-open trials stay per instance; these two decide where traffic may go.
 */
export type HealthEvent =
  | { kind: 'cooldown'; keyId: string; until: number }
  | { kind: 'circuit'; scope: string; state: 'disabled' | 'healthy'; changedAt: number; reason?: string | undefined };

/** A cooldown is told to the others when it starts, or extends the one they know by at least this. */
const SHARE_COOLDOWN_STEP_MS = 1000;

// Records are immutable snapshot objects, so their scope string is computed once per record.
const scopes = new WeakMap<ProviderKeyRecord, string>();
function scopeOf(key: ProviderKeyRecord): string {
  let scope = scopes.get(key);
  if (scope === undefined) {
    scope = `${key.accountId ?? 'platform'}\u0000${key.provider}`;
    scopes.set(key, scope);
  }
  return scope;
}
const round = (value: number): number => Math.round(value * 100) / 100;

export class HealthMonitor {
  private readonly providers = new Map<string, ProviderHealthState>();
  private readonly keys = new Map<string, KeyHealthState>();

  constructor(private readonly options: HealthMonitorOptions) {}

  /** Records one upstream call. O(1): runs on every request. */
  record(key: ProviderKeyRecord, outcome: CallOutcome): void {
    const now = this.options.clock.now();
    const sample = { at: now, ok: outcome.ok, latencyMs: outcome.latencyMs };
    const keyState = this.keyState(key.id);
    const clientFault = outcome.reason !== undefined && CLIENT_FAULT_REASONS.has(outcome.reason);
    // A client's mistake is no sample at all, neither the key's nor the provider's: the provider
    // answered correctly, and counting it as a success would let a flood of typos hide real failures.
    if (!clientFault) keyState.window.record(sample);
    if (outcome.rateLimitRemaining !== undefined) keyState.rateLimitRemaining = outcome.rateLimitRemaining;
    if (outcome.reason === 'rate_limit') this.coolDown(key.id, keyState, now, now + Math.max(1, outcome.retryAfterSeconds ?? 1) * 1000);
    if (outcome.reason === 'auth_error' && !keyState.authRejected) {
      keyState.authRejected = true;
      // The refusal was a check of the key: the next re-check (probes.ts) is one check_interval away.
      keyState.lastProbeAt = now;
      this.options.onKeyRejected?.(key);
    }
    if (outcome.ok) this.restore(key, keyState);
    // Client errors say nothing about the provider's health; a refused key is its key's problem
    // (counted in the key's window above, and taken out of rotation), not the provider's.
    if (clientFault || outcome.reason === 'auth_error') return;
    const provider = this.providerState(scopeOf(key));
    provider.window.record(sample);
    if (outcome.rateLimitRemaining !== undefined) provider.rateLimitRemaining = outcome.rateLimitRemaining;
    if (!outcome.ok) provider.lastError = outcome.reason;
    this.evaluate(provider, this.options.policyFor(key.accountId), now, outcome.ok);
  }

  /** Whether a key may be routed to now: not refused by its provider, its provider not disabled. */
  isAvailable(key: ProviderKeyRecord): boolean {
    if (key.status === 'invalid' || key.status === 'disabled' || key.status === 'deleted' || key.status === 'needs_reentry') return false;
    if (this.keys.get(key.id)?.authRejected || this.options.unusableHere?.(key) !== undefined) return false;
    const provider = this.providers.get(scopeOf(key));
    if (provider === undefined || provider.state !== 'disabled') return true;
    const policy = this.options.policyFor(key.accountId);
    if (this.releaseUnlessAutoDisable(provider, policy)) return true;
    return this.tryHalfOpen(provider, policy);
  }

  /**
   * Why a key cannot be routed to now, in words for an error message (and, when the wait is known,
   * how many seconds until it may be tried); undefined when it can.
   */
  unavailableReason(key: ProviderKeyRecord): UnavailableReason | undefined {
    if (this.isRejected(key)) return { reason: `key ${key.id} was rejected by ${key.provider} (authentication error)`, rejected: true };
    if (key.status === 'disabled' || key.status === 'deleted') return { reason: `key ${key.id} is ${key.status}` };
    // Sealed under a master key version the operator lost (docs/key-lifecycle.md, "Lost the newest master key").
    if (key.status === 'needs_reentry') return { reason: `key ${key.id} must be entered again (its master key version is lost)` };
    const unusable = this.options.unusableHere?.(key);
    if (unusable !== undefined) return { reason: unusable };
    const provider = this.providers.get(scopeOf(key));
    if (provider?.state !== 'disabled') return undefined;
    const policy = this.options.policyFor(key.accountId);
    if (this.releaseUnlessAutoDisable(provider, policy)) return undefined;
    const trialAt = provider.changedAt + policy.check_interval * 1000;
    return {
      reason: `${key.provider} is disabled by the health check (${provider.reason ?? 'unhealthy'}); the next trial is at ${new Date(trialAt).toISOString()}`,
      retryAfterSeconds: Math.max(1, Math.ceil((trialAt - this.options.clock.now()) / 1000)),
    };
  }

  /** A key its provider refused (401/403, invalid key): out of rotation until a re-check finds it working. */
  isRejected(key: ProviderKeyRecord): boolean {
    return key.status === 'invalid' || this.keys.get(key.id)?.authRejected === true;
  }

  /** A key told to wait by a rate limit; pools put it last rather than skipping it. */
  isCoolingDown(key: ProviderKeyRecord): boolean {
    const state = this.keys.get(key.id);
    return state !== undefined && state.cooldownUntil > this.options.clock.now();
  }

  /** A probe's result (the free models endpoint). It can start recovery and clear an auth flag. */
  recordProbe(key: ProviderKeyRecord, ok: boolean, reason: FailureReason | undefined): void {
    const now = this.options.clock.now();
    const keyState = this.keyState(key.id);
    keyState.lastProbeAt = now;
    keyState.lastProbeOk = ok;
    if (ok) this.restore(key, keyState);
    else if (reason === 'auth_error' && !keyState.authRejected) {
      keyState.authRejected = true;
      this.options.onKeyRejected?.(key);
    }
    const provider = this.providers.get(scopeOf(key));
    if (ok && provider?.state === 'disabled') this.moveTo(provider, 'recovering', now, 'probe succeeded');
  }

  /** Keys whose probe is due under their account's policy. */
  probeDue(key: ProviderKeyRecord): boolean {
    const policy = this.options.policyFor(key.accountId);
    const state = this.keys.get(key.id);
    return this.options.clock.now() - (state?.lastProbeAt ?? Number.NEGATIVE_INFINITY) >= policy.check_interval * 1000;
  }

  report(provider: string, keys: readonly ProviderKeyRecord[]): ProviderHealthReport {
    const now = this.options.clock.now();
    const first = keys[0];
    const state = first === undefined ? undefined : this.providers.get(scopeOf(first));
    if (state !== undefined && first !== undefined) {
      const policy = this.options.policyFor(first.accountId);
      if (!this.releaseUnlessAutoDisable(state, policy) && state.state === 'disabled') this.tryHalfOpen(state, policy);
    }
    const issues: string[] = [];
    if (state?.reason !== undefined && state.state !== 'healthy') issues.push(state.reason);
    const keyReports = keys.map((key) => {
      const keyState = this.keys.get(key.id);
      if (keyState?.authRejected || key.status === 'invalid') issues.push(`key ${key.id} was rejected by ${provider} (authentication error)`);
      if (keyState !== undefined && keyState.cooldownUntil > now)
        issues.push(`key ${key.id} is rate limited until ${new Date(keyState.cooldownUntil).toISOString()}`);
      const latency = keyState?.window.latencyPercentile(now, 50);
      return {
        key_id: key.id,
        status: keyStatus(key, keyState, now),
        success_rate: round(keyState?.window.successRate(now) ?? 100),
        latency_ms: latency === undefined ? null : round(latency),
        rate_limit_remaining: keyState?.rateLimitRemaining ?? null,
        cooldown_until: keyState !== undefined && keyState.cooldownUntil > now ? new Date(keyState.cooldownUntil).toISOString() : null,
      };
    });
    const latency = state?.window.latencyPercentile(now, 50);
    const latencyP95 = state?.window.latencyPercentile(now, 95);
    const remaining = keyReports.map((key) => key.rate_limit_remaining).filter((value): value is number => value !== null);
    const circuit = state?.state ?? 'healthy';
    const cooldownUntil = cooldownEnd(keyReports);
    return {
      name: provider,
      status: reportedStatus(circuit, keyReports, cooldownUntil),
      cooldown_until: cooldownUntil,
      latency_ms: latency === undefined ? null : round(latency),
      latency_p95_ms: latencyP95 === undefined ? null : round(latencyP95),
      success_rate: round(state?.window.successRate(now) ?? 100),
      requests: state?.window.count(now) ?? 0,
      rate_limit_remaining: remaining.length > 0 ? remaining.reduce((sum, value) => sum + value, 0) : (state?.rateLimitRemaining ?? null),
      issues,
      keys: keyReports,
    };
  }

  /** Takes what another instance saw: a cooldown (the later end wins) or a circuit opened or closed there. */
  apply(event: HealthEvent): void {
    if (event.kind === 'cooldown') {
      const keyState = this.keyState(event.keyId);
      if (event.until > keyState.cooldownUntil) keyState.cooldownUntil = event.until;
      return;
    }
    const provider = this.providerState(event.scope);
    if (event.state === 'disabled') {
      provider.state = 'disabled';
      provider.changedAt = event.changedAt;
      provider.recoverySuccesses = 0;
      provider.reason = event.reason;
    } else if (provider.state !== 'healthy') {
      provider.window.clear();
      provider.state = 'healthy';
      provider.changedAt = event.changedAt;
      provider.recoverySuccesses = 0;
      provider.reason = undefined;
    }
  }

  private coolDown(keyId: string, keyState: KeyHealthState, now: number, until: number): void {
    const known = Math.max(keyState.cooldownUntil, now);
    keyState.cooldownUntil = until;
    if (until - known >= SHARE_COOLDOWN_STEP_MS) this.options.onShare?.({ kind: 'cooldown', keyId, until });
  }

  private restore(key: ProviderKeyRecord, keyState: KeyHealthState): void {
    if (!keyState.authRejected && key.status !== 'invalid') return;
    keyState.authRejected = false;
    this.options.onKeyRestored?.(key);
  }

  private evaluate(provider: ProviderHealthState, policy: HealthPolicy, now: number, ok: boolean): void {
    this.releaseUnlessAutoDisable(provider, policy);
    if (provider.state === 'recovering') {
      if (!ok) {
        this.moveTo(provider, 'disabled', now, `failed again while recovering (${provider.lastError ?? 'error'})`);
        return;
      }
      provider.recoverySuccesses++;
      if (provider.recoverySuccesses >= RECOVERY_SUCCESSES) {
        provider.window.clear();
        this.moveTo(provider, 'healthy', now, undefined);
      }
      return;
    }
    if (provider.state === 'disabled') return;
    const problem = this.problem(provider, policy, now);
    if (problem === undefined) {
      if (provider.state === 'degraded') this.moveTo(provider, 'healthy', now, undefined);
      return;
    }
    this.moveTo(provider, policy.auto_disable ? 'disabled' : 'degraded', now, problem);
  }

  private problem(provider: ProviderHealthState, policy: HealthPolicy, now: number): string | undefined {
    const samples = provider.window.count(now);
    if (samples < policy.min_samples) return undefined;
    const successRate = provider.window.successRate(now);
    if (successRate < policy.health_threshold) return `success rate ${round(successRate)}% is below ${policy.health_threshold}% over the last ${samples} calls`;
    if (now - provider.medianCheckedAt >= MEDIAN_INTERVAL_MS) {
      provider.medianLatency = provider.window.latencyPercentile(now, 50);
      provider.medianCheckedAt = now;
    }
    const median = provider.medianLatency;
    if (median !== undefined && median > policy.latency_threshold) return `median latency ${round(median)} ms is above ${policy.latency_threshold} ms`;
    return undefined;
  }

  /**
   * With `auto_disable` off, health never keeps a provider out of routing: one it disabled while the
   * flag was on (or is trying after such a disable) is back at once, degraded if its problem is still
   * there. Applied wherever a circuit is read, so switching the flag off needs no signal and takes
   * effect on every instance. A key an operator disabled is its stored status, never touched here.
   */
  private releaseUnlessAutoDisable(provider: ProviderHealthState, policy: HealthPolicy): boolean {
    if (policy.auto_disable || (provider.state !== 'disabled' && provider.state !== 'recovering')) return false;
    const now = this.options.clock.now();
    const problem = this.problem(provider, policy, now);
    this.moveTo(provider, problem === undefined ? 'healthy' : 'degraded', now, problem);
    return true;
  }

  /** Half-open: after `check_interval`, a disabled provider lets traffic through on trial. */
  private tryHalfOpen(provider: ProviderHealthState, policy: HealthPolicy): boolean {
    const now = this.options.clock.now();
    if (now - provider.changedAt < policy.check_interval * 1000) return false;
    this.moveTo(provider, 'recovering', now, 'trial after being disabled');
    return true;
  }

  private moveTo(provider: ProviderHealthState, state: HealthState, now: number, reason: string | undefined): void {
    const previous = provider.state;
    provider.state = state;
    provider.changedAt = now;
    provider.recoverySuccesses = 0;
    if (reason !== undefined || state === 'healthy') provider.reason = reason;
    // Opening the circuit and closing it after a recovery change where traffic goes on every instance.
    if (state === 'disabled' || (state === 'healthy' && previous === 'recovering'))
      this.options.onShare?.({ kind: 'circuit', scope: provider.scope, state, changedAt: now, reason: provider.reason });
  }

  private providerState(scope: string): ProviderHealthState {
    let state = this.providers.get(scope);
    if (state === undefined) {
      state = {
        scope,
        window: new SlidingWindow(WINDOW_CAPACITY, WINDOW_SPAN_MS),
        state: 'healthy',
        changedAt: 0,
        recoverySuccesses: 0,
        reason: undefined,
        rateLimitRemaining: undefined,
        lastError: undefined,
        medianLatency: undefined,
        medianCheckedAt: Number.NEGATIVE_INFINITY,
      };
      this.providers.set(scope, state);
    }
    return state;
  }

  private keyState(keyId: string): KeyHealthState {
    let state = this.keys.get(keyId);
    if (state === undefined) {
      state = {
        window: new SlidingWindow(WINDOW_CAPACITY, WINDOW_SPAN_MS),
        cooldownUntil: 0,
        authRejected: false,
        rateLimitRemaining: undefined,
        lastProbeAt: Number.NEGATIVE_INFINITY,
        lastProbeOk: undefined,
      };
      this.keys.set(keyId, state);
    }
    return state;
  }

  forgetKey(keyId: string): void {
    this.keys.delete(keyId);
  }
}

type KeyReport = ProviderHealthReport['keys'][number];

/**
 * When the first key leaves its cool-down, if every key that can serve is cooling down after a 429
 * (none active, at least one rate limited); null otherwise.
 */
function cooldownEnd(keys: readonly KeyReport[]): string | null {
  if (keys.some((key) => key.status === 'active')) return null;
  let earliest: string | null = null;
  for (const key of keys)
    if (key.status === 'rate_limited' && key.cooldown_until !== null && (earliest === null || key.cooldown_until < earliest)) earliest = key.cooldown_until;
  return earliest;
}

/**
 * The circuit says how the provider answers. A provider none of whose keys can serve (each refused
 * or not active) answers 503 to every request all the same: `unavailable` (QA13). Keys that are only
 * cooling down after a 429 still serve: a pool puts them last but never skips them, so the next
 * request is tried on them (QA14 docs 4: `unavailable` was reported, and the next request served).
 * That is `degraded` (`cooldown_until` says until when), not `unavailable`.
 */
function reportedStatus(circuit: HealthState, keys: readonly KeyReport[], cooldownUntil: string | null): ProviderHealthReport['status'] {
  if (circuit === 'disabled' || keys.length === 0 || keys.some((key) => key.status === 'active')) return circuit;
  if (cooldownUntil !== null) return circuit === 'healthy' ? 'degraded' : circuit;
  return 'unavailable';
}

/** A key's status in the health report: refused, cooling down, stored as not active, or active. */
function keyStatus(key: ProviderKeyRecord, keyState: { authRejected?: boolean; cooldownUntil: number } | undefined, now: number): string {
  if (keyState?.authRejected || key.status === 'invalid') return 'invalid';
  if (keyState !== undefined && keyState.cooldownUntil > now) return 'rate_limited';
  return key.status === 'active' ? 'active' : key.status;
}
