// How the health report words a provider and its keys (HealthMonitor.report): the status a client
// reads from GET /v1/providers/health, from the circuit and what each key can do now.

import type { ProviderKeyRecord } from '../../spec/plugin.ts';

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
