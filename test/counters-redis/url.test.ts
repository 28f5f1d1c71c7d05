// KEYWAY_REDIS_URL without a port means Redis's own 6379, as every Redis client reads it (QA19 ops L1:
// the docs asked for a port the code never required). The port is made explicit before the client
// sees the URL, so the messages naming the server (`Redis at redis://cache:6379 is unreachable`) say
// which port was tried.

import { expect, test } from 'bun:test';
import { redisUrl } from '../../plugins/counters-redis/index.ts';

test('a Redis URL without a port is given 6379; one with a port keeps it', () => {
  expect(redisUrl('redis://localhost')).toBe('redis://localhost:6379');
  expect(redisUrl('rediss://default:s3cret@cache.internal/2')).toBe('rediss://default:s3cret@cache.internal:6379/2');
  expect(redisUrl('redis://127.0.0.1:6380/1')).toBe('redis://127.0.0.1:6380/1');
  expect(redisUrl(' redis://[::1] ')).toBe('redis://[::1]:6379');
});

test('a Redis URL without a host is refused with the form to write, never echoing the URL', () => {
  expect(() => redisUrl('redis://user:Sup3rSecretRedisPassword@')).toThrow(
    'KEYWAY_REDIS_URL is not a URL; write it as redis://[user:password@]host[:port][/db] (the port defaults to 6379).',
  );
});
