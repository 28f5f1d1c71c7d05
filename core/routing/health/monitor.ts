// Provider and key health from real traffic and free probes. Per (account, provider): a sliding
// window of outcomes and a state machine healthy → disabled → recovering → healthy driven by the
// account's health-check policy. Per key: cooldowns after rate limits, and removal after auth errors.

import type { Clock } from '../../clock.ts';
import { combineProviders, type KeyFigures, type ProviderFigures, type Reading } from './figures.ts';
import { SlidingWindow } from './window.ts';
import { providerReport, type HealthState, type ProviderHealthReport } from './report-status.ts';
import { healthProblem, windowReading } from './judge.ts';
import { DisableListeners, PLATFORM_SCOPE } from './disables.ts';

export type { HealthState, ProviderHealthReport } from './report-status.ts';
import type { ProviderKeyRecord } from '../../spec/plugin.ts';
import type { FailureReason } from '../../spec/vocabulary.ts';
import type { ProviderDisabledEvent } from '../../spec/services.ts';

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
  /** When `rateLimitRemaining` was reported: another worker's later report wins in the health answer. */
  rateLimitAt: number;
  lastError: string | undefined;
  /** The median is a sort of the window: judged at most once a second, not on every call. */
  medianLatency: number | undefined;
  medianCheckedAt: number;
}

interface KeyHealthState {
  window: SlidingWindow;
  cooldownUntil: number;
  /**
   * The provider's latest word on the key known here (a call, a re-check, or another member's, heard on
   * the bus); undefined when none came since the start. It outranks the stored status `invalid`, which
   * reaches the snapshot a database write and a reload later.
   */
  auth: 'rejected' | 'accepted' | undefined;
  /** When `auth` was decided: a word older than the one known (messages can cross) is ignored. */
  authChangedAt: number;
  rateLimitRemaining: number | undefined;
  rateLimitAt: number;
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

export interface HealthMonitorOptions {
  clock: Clock;
  policyFor(accountId: string | null): HealthPolicy;
  /** Called once when a key's credentials are refused, so the core can persist the flag. */
  onKeyRejected?(key: ProviderKeyRecord): void;
  /** Called when a key flagged invalid works again (a probe or a call succeeded). */
  onKeyRestored?(key: ProviderKeyRecord): void;
  /**
   * Called with what the other instances should know (core/routing/health/shared.ts sends it; the
   * promise, if any, says when it was delivered: `shared()`); `apply` takes theirs.
   */
  onShare?(event: HealthEvent): void | Promise<void>;
  /**
   * Why a key cannot be used on this instance whatever its health (sealed under a master key version
   * this instance does not have: KeyVault.unusableHere); undefined when it can. Called for every key
   * routing considers, so it must be cheap.
   */
  unusableHere?(key: ProviderKeyRecord): string | undefined;
}

/**
 * What one instance tells the others: a key's cooldown, a key its provider refused or accepted again
 * (a call's 401, a re-check), and a provider's circuit opening or closing. Windows and half-open trials
 * stay per instance; these decide where traffic may go.
 */
export type HealthEvent =
  | { kind: 'cooldown'; keyId: string; until: number }
  | { kind: 'key'; keyId: string; rejected: boolean; at: number }
  | { kind: 'circuit'; scope: string; state: 'disabled' | 'healthy'; changedAt: number; reason?: string | undefined };

/** A cooldown is told to the others when it starts, or extends the one they know by at least this. */
const SHARE_COOLDOWN_STEP_MS = 1000;

// Records are immutable snapshot objects, so their scope string is computed once per record.
const scopes = new WeakMap<ProviderKeyRecord, string>();
function scopeOf(key: ProviderKeyRecord): string {
  let scope = scopes.get(key);
  if (scope === undefined) {
    scope = `${key.accountId ?? PLATFORM_SCOPE}\u0000${key.provider}`;
    scopes.set(key, scope);
  }
  return scope;
}
const readingOf = (state: { rateLimitRemaining: number | undefined; rateLimitAt: number }): Reading | null =>
  state.rateLimitRemaining === undefined ? null : { value: state.rateLimitRemaining, at: state.rateLimitAt };

export class HealthMonitor {
  private readonly providers = new Map<string, ProviderHealthState>();
  private readonly keys = new Map<string, KeyHealthState>();
  /** Key refusals and recoveries being told to the other members. */
  private readonly sharing = new Set<Promise<void>>();
  private readonly disables = new DisableListeners();

  constructor(private readonly options: HealthMonitorOptions) {}

  /** Hears every disable, this monitor's or another member's (ProviderHealthService.onDisabled). */
  onDisabled(listener: (event: ProviderDisabledEvent) => void): () => void {
    return this.disables.add(listener);
  }

  /**
   * Resolves once the key refusals and recoveries decided so far have reached the other members: a
   * re-check (GET /v1/providers) answers after the key it found working is back in rotation on every
   * worker, not only on the one that ran it.
   */
  async shared(): Promise<void> {
    await Promise.all([...this.sharing]);
  }

  /** Records one upstream call. O(1): runs on every request. */
  record(key: ProviderKeyRecord, outcome: CallOutcome): void {
    const now = this.options.clock.now();
    const sample = { at: now, ok: outcome.ok, latencyMs: outcome.latencyMs };
    const keyState = this.keyState(key.id);
    const clientFault = outcome.reason !== undefined && CLIENT_FAULT_REASONS.has(outcome.reason);
    // A client's mistake is no sample at all, neither the key's nor the provider's: the provider
    // answered correctly, and counting it as a success would let a flood of typos hide real failures.
    if (!clientFault) keyState.window.record(sample);
    if (outcome.rateLimitRemaining !== undefined) {
      keyState.rateLimitRemaining = outcome.rateLimitRemaining;
      keyState.rateLimitAt = now;
    }
    if (outcome.reason === 'rate_limit') this.coolDown(key.id, keyState, now, now + Math.max(1, outcome.retryAfterSeconds ?? 1) * 1000);
    if (outcome.reason === 'auth_error' && keyState.auth !== 'rejected') this.reject(key, keyState, now);
    if (outcome.ok) this.restore(key, keyState, now);
    // Client errors say nothing about the provider's health; a refused key is its key's problem
    // (counted in the key's window above, and taken out of rotation), not the provider's.
    if (clientFault || outcome.reason === 'auth_error') return;
    const provider = this.providerState(scopeOf(key));
    provider.window.record(sample);
    if (outcome.rateLimitRemaining !== undefined) {
      provider.rateLimitRemaining = outcome.rateLimitRemaining;
      provider.rateLimitAt = now;
    }
    if (!outcome.ok) provider.lastError = outcome.reason;
    this.evaluate(provider, this.options.policyFor(key.accountId), now, outcome.ok);
  }

  /** Whether a key may be routed to now: not refused by its provider, its provider not disabled. */
  isAvailable(key: ProviderKeyRecord): boolean {
    if (key.status === 'disabled' || key.status === 'deleted' || key.status === 'needs_reentry') return false;
    if (this.isRejected(key) || this.options.unusableHere?.(key) !== undefined) return false;
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

  /**
   * A key its provider refused (401/403, invalid key): out of rotation until a re-check finds it
   * working. The latest word known here decides; the stored status only when none came (after a start).
   */
  isRejected(key: ProviderKeyRecord): boolean {
    const auth = this.keys.get(key.id)?.auth;
    return auth === undefined ? key.status === 'invalid' : auth === 'rejected';
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
    if (ok) this.restore(key, keyState, now);
    else if (reason === 'auth_error' && keyState.auth !== 'rejected') this.reject(key, keyState, now);
    const provider = this.providers.get(scopeOf(key));
    if (ok && provider?.state === 'disabled') this.moveTo(provider, 'recovering', now, 'probe succeeded');
  }

  /** Keys whose probe is due under their account's policy. */
  probeDue(key: ProviderKeyRecord): boolean {
    const policy = this.options.policyFor(key.accountId);
    const state = this.keys.get(key.id);
    return this.options.clock.now() - (state?.lastProbeAt ?? Number.NEGATIVE_INFINITY) >= policy.check_interval * 1000;
  }

  /** This process's windows for one provider's keys: what the other workers combine with theirs. */
  figures(keys: readonly ProviderKeyRecord[]): ProviderFigures {
    const now = this.options.clock.now();
    const first = keys[0];
    const state = first === undefined ? undefined : this.providers.get(scopeOf(first));
    const keyFigures: Record<string, KeyFigures> = {};
    for (const key of keys) {
      const keyState = this.keys.get(key.id);
      if (keyState !== undefined) keyFigures[key.id] = { window: keyState.window.figures(now), rateLimit: readingOf(keyState) };
    }
    return {
      window: state?.window.figures(now) ?? { requests: 0, failures: 0, latencies: [] },
      rateLimit: state === undefined ? null : readingOf(state),
      keys: keyFigures,
    };
  }

  /**
   * The provider's health as answered: the circuit, cooldowns and refusals as known here (shared by the
   * cluster bus), the figures of this process's windows combined with `others`' (the other workers').
   */
  report(provider: string, keys: readonly ProviderKeyRecord[], others: readonly ProviderFigures[] = []): ProviderHealthReport {
    const figures = combineProviders([this.figures(keys), ...others]);
    const now = this.options.clock.now();
    const first = keys[0];
    const state = first === undefined ? undefined : this.providers.get(scopeOf(first));
    const policy = this.options.policyFor(first?.accountId ?? null);
    if (state !== undefined && !this.releaseUnlessAutoDisable(state, policy) && state.state === 'disabled') this.tryHalfOpen(state, policy);
    let circuit = state?.state ?? 'healthy';
    let reason = state?.reason;
    // Disabled or recovering decides routing and is shown as it is; healthy or degraded is judged from the
    // figures answered (every worker's window now), not from this worker's verdict at its last call.
    if (circuit === 'healthy' || circuit === 'degraded') {
      reason = healthProblem(policy, windowReading(figures.window));
      circuit = reason === undefined ? 'healthy' : 'degraded';
    }
    return providerReport({
      provider,
      keys,
      figures,
      circuit,
      reason,
      now,
      cooldownUntil: (keyId) => this.keys.get(keyId)?.cooldownUntil ?? 0,
      isRejected: (key) => this.isRejected(key),
    });
  }

  /**
   * Takes what another instance saw: a cooldown (the later end wins), a key refused or accepted (the
   * later word wins; the member that saw it persists the status), or a circuit opened or closed there.
   */
  apply(event: HealthEvent): void {
    if (event.kind === 'cooldown') {
      const keyState = this.keyState(event.keyId);
      if (event.until > keyState.cooldownUntil) keyState.cooldownUntil = event.until;
      return;
    }
    if (event.kind === 'key') {
      const keyState = this.keyState(event.keyId);
      if (event.at < keyState.authChangedAt) return;
      keyState.auth = event.rejected ? 'rejected' : 'accepted';
      keyState.authChangedAt = event.at;
      // The refusal was a check of the key, there: the next re-check here is one check_interval away.
      if (event.rejected) keyState.lastProbeAt = this.options.clock.now();
      return;
    }
    const provider = this.providerState(event.scope);
    if (event.state === 'disabled') {
      provider.state = 'disabled';
      provider.changedAt = event.changedAt;
      provider.recoverySuccesses = 0;
      provider.reason = event.reason;
      this.disables.tell(event.scope, event.changedAt, event.reason);
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

  /**
   * A 401 is the provider's word on the key, not a passing fault: it is told to every member at once, so
   * none sends another call with a revoked key (each would answer a client 502 provider_key_rejected).
   */
  private reject(key: ProviderKeyRecord, keyState: KeyHealthState, now: number): void {
    keyState.auth = 'rejected';
    keyState.authChangedAt = now;
    // The refusal was a check of the key: the next re-check (probes.ts) is one check_interval away.
    keyState.lastProbeAt = now;
    this.options.onKeyRejected?.(key);
    this.shareKeyWord({ kind: 'key', keyId: key.id, rejected: true, at: now });
  }

  /** Back in rotation on every member: whichever re-checked it, the next request anywhere may use it. */
  private restore(key: ProviderKeyRecord, keyState: KeyHealthState, now: number): void {
    if (!this.isRejected(key)) return;
    keyState.auth = 'accepted';
    keyState.authChangedAt = now;
    this.options.onKeyRestored?.(key);
    this.shareKeyWord({ kind: 'key', keyId: key.id, rejected: false, at: now });
  }

  private shareKeyWord(event: HealthEvent): void {
    const told = this.options.onShare?.(event);
    if (told === undefined) return;
    const settled = told.catch(() => undefined);
    this.sharing.add(settled);
    void settled.then(() => this.sharing.delete(settled));
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
    return healthProblem(policy, {
      samples: provider.window.count(now),
      successRate: provider.window.successRate(now),
      medianLatency: () => {
        if (now - provider.medianCheckedAt >= MEDIAN_INTERVAL_MS) {
          provider.medianLatency = provider.window.latencyPercentile(now, 50);
          provider.medianCheckedAt = now;
        }
        return provider.medianLatency;
      },
    });
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
    // Told at once: a probe may move it on to recovering before anyone reads the report (QA19).
    if (state === 'disabled') this.disables.tell(provider.scope, now, provider.reason);
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
        rateLimitAt: 0,
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
        auth: undefined,
        authChangedAt: Number.NEGATIVE_INFINITY,
        rateLimitRemaining: undefined,
        rateLimitAt: 0,
        lastProbeAt: Number.NEGATIVE_INFINITY,
        lastProbeOk: undefined,
      };
      this.keys.set(keyId, state);
    }
    return state;
  }

  /**
   * Forgets every word on keys heard or seen so far: the stored statuses (reloaded with the snapshot)
   * decide again. After a bus outage, when a recovery another member told may have been missed.
   */
  trustStoredKeyStatus(): void {
    for (const state of this.keys.values()) {
      state.auth = undefined;
      state.authChangedAt = Number.NEGATIVE_INFINITY;
    }
  }

  forgetKey(keyId: string): void {
    this.keys.delete(keyId);
  }
}
