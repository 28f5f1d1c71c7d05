// Which of the loaded plugins' drivers this start uses: the crypto backend new secrets are sealed with,
// and the counters and cluster bus for KEYWAY_REDIS_URL. A choice the operator named and no plugin
// serves stops the start, before the store opens, rather than quietly falling back to a default.

import type { Clock } from './clock.ts';
import { soloCluster } from './cluster/local.ts';
import { ConfigError, type GatewayConfig } from './config.ts';
import { MemoryCounters } from './counters/memory.ts';
import { randomId } from './credentials/secrets.ts';
import type { PluginSet } from './registry.ts';
import type { ClusterBus } from './spec/cluster.ts';
import type { Counters } from './spec/plugin.ts';

/** `KEYWAY_CRYPTO_BACKEND` names the backend new secrets are sealed with; the first one loaded otherwise. */
export function activeCryptoBackend(plugins: PluginSet, env: Record<string, string | undefined>): string {
  const named = env.KEYWAY_CRYPTO_BACKEND?.trim();
  const loaded = [...plugins.cryptoBackends.keys()];
  if (named === undefined || named === '') {
    const first = loaded[0];
    if (first === undefined) throw new Error('No crypto-backend plugin is loaded; provider keys cannot be stored.');
    return first;
  }
  if (!plugins.cryptoBackends.has(named))
    throw new ConfigError(`KEYWAY_CRYPTO_BACKEND is '${named}', which no loaded plugin provides (loaded: ${loaded.join(', ') || 'none'}).`);
  return named;
}

/**
 * A KEYWAY_REDIS_URL no loaded counters plugin accepts (`http://`, `valkey://`, a typo) stops the
 * start: falling back to counters in memory would let every instance keep its own budgets, each
 * overshot as many times over as there are instances, with nothing said. The accepted schemes come
 * from the plugins (`CountersDriver.schemes`); only the scheme of the URL is named, since the rest
 * may hold a password.
 */
export function refuseUnacceptedRedisUrl(plugins: Pick<PluginSet, 'countersDrivers'>, url: string | undefined): void {
  if (url === undefined || plugins.countersDrivers.some((entry) => entry.value.accepts(url))) return;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  const got = scheme === undefined ? 'a value without a scheme' : `the scheme ${scheme}:`;
  if (plugins.countersDrivers.length === 0) {
    throw new ConfigError(`KEYWAY_REDIS_URL is set (${got}), but no counters plugin is loaded to use it; unset it, or load one with KEYWAY_PLUGINS.`);
  }
  const schemes = [...new Set(plugins.countersDrivers.flatMap((entry) => entry.value.schemes ?? []))];
  const loaded = [...new Set(plugins.countersDrivers.map((entry) => entry.plugin))].join(', ');
  const accepted = schemes.length === 0 ? 'a URL a loaded counters plugin accepts' : alternatives(schemes);
  throw new ConfigError(`KEYWAY_REDIS_URL must start with ${accepted} (counters plugins: ${loaded}); got ${got}.`);
}

/** `a`, `a or b`, `a, b or c`. */
function alternatives(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** The counters plugin accepting KEYWAY_REDIS_URL when one is set (checked at start); in memory otherwise. */
export async function openCounters(plugins: PluginSet, config: GatewayConfig, clock: Clock): Promise<Counters> {
  const url = config.redisUrl;
  const driver = url === undefined ? undefined : plugins.countersDrivers.find((entry) => entry.value.accepts(url));
  return url === undefined || driver === undefined ? new MemoryCounters(clock) : driver.value.open(url, { clock });
}

/** A cluster plugin accepting KEYWAY_REDIS_URL when one is set; this process alone otherwise. */
export async function openCluster(plugins: PluginSet, config: GatewayConfig, clock: Clock): Promise<{ bus: ClusterBus; shared: boolean }> {
  const url = config.redisUrl;
  const driver = url === undefined ? undefined : plugins.clusterDrivers.find((entry) => entry.value.accepts(url));
  if (url === undefined || driver === undefined) return { bus: soloCluster(clock), shared: false };
  return { bus: await driver.value.open(url, { clock, instanceId: randomId('inst') }), shared: true };
}
