// How the health report words a provider and its keys (HealthMonitor.report): the status a client
// reads from GET /v1/providers/health, from the circuit and what each key can do now.

import type { ProviderKeyRecord } from '../../spec/plugin.ts';
import { latencyOf, successRateOf, type ProviderFigures } from './figures.ts';

export type HealthState = 'healthy' | 'degraded' | 'disabled' | 'recovering';

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

type KeyReport = ProviderHealthReport['keys'][number];

/**
 * When the first key leaves its cool-down, if every key that can serve is cooling down after a 429
 * (none active, at least one rate limited); null otherwise.
 */
export function cooldownEnd(keys: readonly KeyReport[]): string | null {
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
export function reportedStatus(circuit: HealthState, keys: readonly KeyReport[], cooldownUntil: string | null): ProviderHealthReport['status'] {
  if (circuit === 'disabled' || keys.length === 0 || keys.some((key) => key.status === 'active')) return circuit;
  if (cooldownUntil !== null) return circuit === 'healthy' ? 'degraded' : circuit;
  return 'unavailable';
}

/** A key's status in the health report: refused, cooling down, stored as not active, or active. */
export function keyStatus(key: ProviderKeyRecord, rejected: boolean, keyState: { cooldownUntil: number } | undefined, now: number): string {
  if (rejected) return 'invalid';
  if (keyState !== undefined && keyState.cooldownUntil > now) return 'rate_limited';
  // A stored `invalid` the latest word here overrides (accepted again, the status not yet reloaded).
  return key.status === 'active' || key.status === 'invalid' ? 'active' : key.status;
}

/** What the report of one provider is made of (HealthMonitor.report). */
export interface ReportInputs {
  provider: string;
  keys: readonly ProviderKeyRecord[];
  /** The windows' figures: this process's combined with the other workers'. */
  figures: ProviderFigures;
  circuit: HealthState;
  reason: string | undefined;
  now: number;
  /** When the key's cool-down ends (0: none known). */
  cooldownUntil(keyId: string): number;
  isRejected(key: ProviderKeyRecord): boolean;
}

const round = (value: number): number => Math.round(value * 100) / 100;
const rounded = (value: number | undefined): number | null => (value === undefined ? null : round(value));

export function providerReport({ provider, keys, figures, circuit, reason, now, cooldownUntil, isRejected }: ReportInputs): ProviderHealthReport {
  const issues: string[] = [];
  if (reason !== undefined && circuit !== 'healthy') issues.push(reason);
  const keyReports = keys.map((key): KeyReport => {
    const until = cooldownUntil(key.id);
    const rejected = isRejected(key);
    if (rejected) issues.push(`key ${key.id} was rejected by ${provider} (authentication error)`);
    if (until > now) issues.push(`key ${key.id} is rate limited until ${new Date(until).toISOString()}`);
    const keyFigures = figures.keys[key.id];
    return {
      key_id: key.id,
      status: keyStatus(key, rejected, { cooldownUntil: until }, now),
      success_rate: round(successRateOf(keyFigures?.window)),
      latency_ms: rounded(latencyOf(keyFigures?.window, 50)),
      rate_limit_remaining: keyFigures?.rateLimit?.value ?? null,
      cooldown_until: until > now ? new Date(until).toISOString() : null,
    };
  });
  const remaining = keyReports.map((key) => key.rate_limit_remaining).filter((value): value is number => value !== null);
  const cooldown = cooldownEnd(keyReports);
  return {
    name: provider,
    status: reportedStatus(circuit, keyReports, cooldown),
    cooldown_until: cooldown,
    latency_ms: rounded(latencyOf(figures.window, 50)),
    latency_p95_ms: rounded(latencyOf(figures.window, 95)),
    success_rate: round(successRateOf(figures.window)),
    requests: figures.window.requests,
    rate_limit_remaining: remaining.length > 0 ? remaining.reduce((sum, value) => sum + value, 0) : (figures.rateLimit?.value ?? null),
    issues,
    keys: keyReports,
  };
}
