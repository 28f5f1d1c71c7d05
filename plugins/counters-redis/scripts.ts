// The Lua scripts behind the Redis counters. Each runs atomically on the server, so a reservation
// checks and adds in one step whatever number of gateways call it at once. Time comes from the
// caller (ARGV "now"): expiry is judged by the gateway's clock, which keeps tests with a manual
// clock exact; the key's Redis TTL (`expiresAt - now + grace`) only reclaims memory afterwards.
//
// A counter is a hash {v = total, e = expiresAt}. Numbers travel as strings ('%.17g') because Redis
// truncates Lua numbers to integers on the way out.

import { createHash } from 'node:crypto';

export interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Reads a live counter into `v` and `e` (0 and 0 when absent or expired by the caller's clock). */
const READ_LIVE = `
local now = tonumber(ARGV[1])
local found = redis.call('HMGET', KEYS[1], 'v', 'e')
local v, e = 0, 0
if found[1] and found[2] and tonumber(found[2]) > now then
  v = tonumber(found[1]); e = tonumber(found[2])
end
`;

/** Writes `v` with the later of its expiries, and a TTL that outlives it by the grace. */
const WRITE = `
local wanted = tonumber(ARGV[3])
if wanted > e then e = wanted end
local ttl = math.floor(e - now + tonumber(ARGV[2]))
if ttl < 1 then ttl = 1 end
redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v), 'e', string.format('%.17g', e))
redis.call('PEXPIRE', KEYS[1], ttl)
`;

/** KEYS: counter. ARGV: now, grace, expiresAt, amount, limit. Returns {granted 0|1, total}. */
export const RESERVE = script(`${READ_LIVE}
local amount = tonumber(ARGV[4])
if v + amount > tonumber(ARGV[5]) then return {0, string.format('%.17g', v)} end
v = v + amount
${WRITE}
return {1, string.format('%.17g', v)}
`);

/** KEYS: counter. ARGV: now, grace, expiresAt, delta. Returns the total, never below 0. */
export const ADJUST = script(`${READ_LIVE}
v = v + tonumber(ARGV[4])
if v < 0 then v = 0 end
${WRITE}
return string.format('%.17g', v)
`);

/** KEYS: window counter. ARGV: amount, ttl. Returns the window's total. */
export const HIT = script(`
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return total
`);

/** KEYS: cooldown. ARGV: until, ttl. A later end wins; returns the end in force. */
export const COOL_DOWN = script(`
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted <= current then return string.format('%.17g', current) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`);
