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

/**
 * Reads a live counter into `v` and `e` (0 and 0 when absent or expired by the caller's clock). An
 * expired counter is dropped with its leases. Then lapsed leases (KEYS[2], a sorted set of lease ids
 * scored by when they lapse; their amounts are the counter's `a:<id>` fields) leave the total.
 */
const READ_LIVE = `
local now = tonumber(ARGV[1])
local found = redis.call('HMGET', KEYS[1], 'v', 'e')
local v, e = 0, 0
if found[1] and found[2] and tonumber(found[2]) > now then
  v = tonumber(found[1]); e = tonumber(found[2])
elseif found[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(lapsed) do
  v = v - tonumber(redis.call('HGET', KEYS[1], 'a:' .. id) or '0')
  redis.call('HDEL', KEYS[1], 'a:' .. id)
end
if v < 0 then v = 0 end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
`;

/** Writes `v` with the later of its expiries, and a TTL that outlives it by the grace. */
const WRITE = `
local wanted = tonumber(ARGV[3])
if wanted > e then e = wanted end
local ttl = math.floor(e - now + tonumber(ARGV[2]))
if ttl < 1 then ttl = 1 end
redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v), 'e', string.format('%.17g', e))
redis.call('PEXPIRE', KEYS[1], ttl)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
`;

/** KEYS: counter, leases. ARGV: now, grace, expiresAt, amount, limit. Returns {granted 0|1, total}. */
export const RESERVE = script(`${READ_LIVE}
local amount = tonumber(ARGV[4])
if v + amount > tonumber(ARGV[5]) then return {0, string.format('%.17g', v)} end
v = v + amount
${WRITE}
return {1, string.format('%.17g', v)}
`);

/** KEYS: counter, leases. ARGV: now, grace, expiresAt, delta. Returns the total, never below 0. */
export const ADJUST = script(`${READ_LIVE}
v = v + tonumber(ARGV[4])
if v < 0 then v = 0 end
${WRITE}
return string.format('%.17g', v)
`);

/** KEYS: counter, leases. ARGV: now. The live total (lapsed leases removed). */
export const GET = script(`${READ_LIVE}
if v > 0 or redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v)) end
return string.format('%.17g', v)
`);

/**
 * Reads a counter for the lease scripts into `v` and `e` (0 and 0 when absent or expired by the
 * caller's clock; an expired one is dropped with its leases) and `fields[3]`, the field asked for
 * after `v` and `e`, in one call. Unlike READ_LIVE it leaves lapsed leases in the total: every
 * `redis.call` from Lua costs a few microseconds, and a budgeted request makes two of these calls, so
 * the lapsed ones are taken out only where they change an answer (LAPSE_OUT).
 */
const READ_FOR_LEASE = `
local now = tonumber(ARGV[1])
local fields = redis.call('HMGET', KEYS[1], 'v', 'e', FIELD)
local v, e = 0, 0
local live = fields[1] and fields[2] and tonumber(fields[2]) > now
if live then
  v = tonumber(fields[1]); e = tonumber(fields[2])
elseif fields[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  fields[3] = false
end
`;

/** Takes lapsed leases out of `v` (the READ_LIVE step), when a reservation would not otherwise fit. */
const LAPSE_OUT = `
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(lapsed) do
  v = v - tonumber(redis.call('HGET', KEYS[1], 'a:' .. id) or '0')
  redis.call('HDEL', KEYS[1], 'a:' .. id)
end
if v < 0 then v = 0 end
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v))
end
`;

/** The later expiry wins; the TTLs (expiry + grace) are set when the counter is new or its expiry moved. */
const EXPIRY = `
local wanted = tonumber(ARGV[3])
local moved = wanted > e
if moved then e = wanted end
local ttl = math.floor(e - now + tonumber(ARGV[2]))
if ttl < 1 then ttl = 1 end
`;

/**
 * KEYS: counter, leases. ARGV: now, grace, expiresAt, amount, limit, lease id, lease until. Lapsed
 * leases only ever make the total larger, so a reservation that fits with them counted fits without
 * them: they are taken out only when it would not.
 */
export const RESERVE_LEASE = script(`${READ_FOR_LEASE.replace('FIELD', "'e'")}
local amount = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
if v + amount > limit then
${LAPSE_OUT}
  if v + amount > limit then return {0, string.format('%.17g', v)} end
end
v = v + amount
${EXPIRY}
redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v), 'e', string.format('%.17g', e), 'a:' .. ARGV[6], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[6])
-- The lease set may be new (it vanishes when its last lease is settled): it always gets the TTL.
redis.call('PEXPIRE', KEYS[2], ttl)
if moved or not live then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, string.format('%.17g', v)}
`);

/**
 * KEYS: counter, leases. ARGV: now, grace, expiresAt, lease id, spent. Returns the total. A lease that
 * lapsed but is still held is swapped for the cost as a live one is; one already taken out adds only
 * the cost: either way nothing is given back twice.
 */
export const SETTLE_LEASE = script(`${READ_FOR_LEASE.replace('FIELD', "'a:' .. ARGV[4]")}
if fields[3] then
  v = v - tonumber(fields[3])
  redis.call('HDEL', KEYS[1], 'a:' .. ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[4])
end
v = v + tonumber(ARGV[5])
if v < 0 then v = 0 end
${EXPIRY}
redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v), 'e', string.format('%.17g', e))
if moved or not live then
  redis.call('PEXPIRE', KEYS[1], ttl)
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return string.format('%.17g', v)
`);

/** KEYS: leases. ARGV: now, until, lease ids…. Only leases still live are extended. */
export const RENEW_LEASES = script(`
local now = tonumber(ARGV[1])
for index = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[index])
  if score and tonumber(score) > now then redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[index]) end
end
return 0
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

/** KEYS: cluster lease. ARGV: holder, ttl. Renews the lease if `holder` still holds it: 1, else 0. */
export const RENEW_CLUSTER_LEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

/** KEYS: cluster lease. ARGV: holder. Gives the lease up if `holder` still holds it. */
export const RELEASE_CLUSTER_LEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
