// The health monitor tells each disable to its listeners (ProviderHealthService.onDisabled, QA19 L3):
// its own, and one another member told over the cluster bus; in a microtask, never inside the call
// being recorded; the platform's keys named with a null account.

import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { DEFAULT_HEALTH_POLICY, HealthMonitor } from '../../core/routing/health/monitor.ts';
import type { ProviderKeyRecord } from '../../core/spec/plugin.ts';
import type { ProviderDisabledEvent } from '../../core/spec/services.ts';

const key = (accountId: string | null): ProviderKeyRecord => ({
  id: `key-${accountId ?? 'platform'}`,
  provider: 'openai',
  owner: accountId === null ? 'platform' : 'account',
  accountId,
  organizationId: undefined,
  settings: {},
  status: 'active',
  weight: 1,
});

function listening() {
  const clock = new ManualClock(1_000_000);
  const health = new HealthMonitor({ clock, policyFor: () => ({ ...DEFAULT_HEALTH_POLICY, auto_disable: true, min_samples: 2 }) });
  const heard: ProviderDisabledEvent[] = [];
  const stop = health.onDisabled((event) => void heard.push(event));
  return { clock, health, heard, stop };
}

const failed = { ok: false, reason: 'server_error' as const, latencyMs: 10 };

describe('HealthMonitor.onDisabled', () => {
  test("a disable here is told after the call's recording, with the account, provider, time and reason", async () => {
    const { health, heard } = listening();
    health.record(key('acme'), failed);
    health.record(key('acme'), failed);
    expect(heard).toEqual([]);
    await Promise.resolve();
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ accountId: 'acme', provider: 'openai', at: 1_000_000 });
    expect(heard[0]?.reason).toContain('success rate');
    // A probe moving it on to recovering is no disable.
    health.recordProbe(key('acme'), true, undefined);
    await Promise.resolve();
    expect(heard).toHaveLength(1);
  });

  test("another member's disable, heard on the bus, is told too; the platform's keys have no account", async () => {
    const { health, heard, stop } = listening();
    health.apply({ kind: 'circuit', scope: 'platform\u0000anthropic', state: 'disabled', changedAt: 5, reason: 'over there' });
    health.apply({ kind: 'circuit', scope: 'platform\u0000anthropic', state: 'healthy', changedAt: 6 });
    await Promise.resolve();
    expect(heard).toEqual([{ accountId: null, provider: 'anthropic', at: 5, reason: 'over there' }]);
    stop();
    health.apply({ kind: 'circuit', scope: 'acme\u0000openai', state: 'disabled', changedAt: 7 });
    await Promise.resolve();
    expect(heard).toHaveLength(1);
  });
});
