// Shared by the Redis tests: the server's URL, a random key prefix per run, and its clean-up.

import { RedisClient } from 'bun';

export const TEST_REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether the test Redis answers a PING within two seconds (suites skip, saying so, when it does not). */
export async function redisReachable(): Promise<boolean> {
  const client = new RedisClient(TEST_REDIS_URL, { connectionTimeout: 2_000, autoReconnect: false });
  try {
    return (await client.send('PING', [])) === 'PONG';
  } catch {
    return false;
  } finally {
    client.close();
  }
}

export function randomPrefix(): string {
  return `keyway-test:${crypto.randomUUID()}:`;
}

/** Deletes every key under `prefix` (SCAN, never KEYS, so a shared server is not blocked). */
export async function deletePrefix(prefix: string): Promise<void> {
  const client = new RedisClient(TEST_REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = (await client.send('SCAN', [cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      if (keys.length > 0) await client.send('UNLINK', keys);
    } while (cursor !== '0');
  } finally {
    client.close();
  }
}

/** How many keys exist under `prefix`. */
export async function countKeys(prefix: string): Promise<number> {
  const client = new RedisClient(TEST_REDIS_URL);
  try {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = (await client.send('SCAN', [cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  } finally {
    client.close();
  }
}
