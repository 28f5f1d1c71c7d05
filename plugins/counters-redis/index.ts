// counters-redis: budgets, rate limits and cooldowns shared by every gateway on one Redis, chosen
// by KEYWAY_REDIS_URL=redis://… (or rediss:// for TLS); and the cluster bus on the same server
// (configuration fan-out, shared health, approvals, leases for cluster-scoped jobs). Bun's built-in RedisClient: no native
// module, so the single binary keeps working. See docs/deployment.md, "Redis".

import type { ClusterDriver } from '../../core/spec/cluster.ts';
import type { CountersDriver } from '../../core/spec/counters.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { integerSetting, urlSetting } from '../../core/spec/settings.ts';

export const REDIS_COUNTERS_PLUGIN = 'counters-redis';
const DEFAULT_PREFIX = 'keyway:';
const DEFAULT_TIMEOUT_MS = 1_000;
const REDIS_SCHEMES = ['redis://', 'rediss://'] as const;
const REDIS_URL = /^rediss?:\/\//i;

/** Redis's own port: what every Redis client takes when the URL names none. */
const DEFAULT_REDIS_PORT = '6379';

/**
 * KEYWAY_REDIS_URL parsed before Bun's client sees it: the client's own refusal is a bare "Invalid URL
 * format" with a stack (a port that is not a number, a password and no host). Never echoes the URL.
 * Without a port it is given 6379, as any Redis client reads it, and made explicit so the messages
 * naming the server say which port was tried (QA19 ops L1: the docs asked for a port nothing required).
 */
export function redisUrl(configured: string): string {
  const text =
    urlSetting('KEYWAY_REDIS_URL', configured, ['redis:', 'rediss:'], 'redis://[user:password@]host[:port][/db] (the port defaults to 6379)') ?? configured;
  const url = new URL(text);
  if (url.port !== '') return text;
  url.port = DEFAULT_REDIS_PORT;
  return url.toString();
}

export const redisCountersPlugin = definePlugin({
  name: REDIS_COUNTERS_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'counters',
  environment: [
    { name: 'KEYWAY_REDIS_PREFIX', description: 'The prefix of every Redis key Keyway writes' },
    { name: 'KEYWAY_REDIS_TIMEOUT_MS', description: 'How long a Redis command may take' },
  ],
  description: 'Budgets, rate limits and cooldowns in Redis, exact across instances (atomic Lua scripts); the cluster bus (pub/sub, leases)',
  setup: ({ env, logger }) => {
    const prefix = env.KEYWAY_REDIS_PREFIX?.trim() || DEFAULT_PREFIX;
    const timeoutMs = integerSetting('KEYWAY_REDIS_TIMEOUT_MS', env.KEYWAY_REDIS_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, 1, 600_000);
    const driver: CountersDriver = {
      name: 'redis',
      accepts: (url) => REDIS_URL.test(url),
      schemes: REDIS_SCHEMES,
      async open(configuredUrl, { clock }) {
        const url = redisUrl(configuredUrl);
        // Loaded with a redis:// URL only: without KEYWAY_REDIS_URL the Redis modules are never held.
        const { RedisCounters } = await import('./counters.ts');
        const counters = new RedisCounters({
          url,
          prefix,
          clock,
          timeoutMs,
          onStateChange: (state, detail) => {
            if (state === 'connected') logger.warn({ redis: detail }, 'Redis reachable again: budgets and shared rate limits are back');
            else logger.error({ redis: detail }, 'Redis unreachable: budgeted requests are refused (503) and rate limits count per instance until it returns');
          },
        });
        // An unreachable server does not stop the gateway: unbudgeted traffic is served meanwhile.
        if (!(await counters.connect())) logger.error({ redis: url.replace(/\/\/[^@/]*@/, '//') }, 'Redis is unreachable at start; retrying on use');
        return counters;
      },
    };
    const cluster: ClusterDriver = {
      name: 'redis',
      accepts: (url) => REDIS_URL.test(url),
      async open(url, { instanceId }) {
        const { RedisClusterBus } = await import('./cluster.ts');
        const bus = new RedisClusterBus({ url: redisUrl(url), prefix, instanceId, timeoutMs, log: logger });
        // Unreachable at start: the gateway starts all the same, and catches up once the bus is back.
        await bus.start();
        return bus;
      },
    };
    return { counters: driver, cluster };
  },
});

export default redisCountersPlugin;
