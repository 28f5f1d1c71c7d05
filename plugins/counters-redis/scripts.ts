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
 * The lease operations as Lua functions, for one script that runs a batch of them (LEASE_BATCH: the
 * reservations and settlements a gateway makes in one event-loop turn travel as one command) and for
 * the single-operation scripts below. Every `redis.call` from Lua costs a few microseconds, so each
 * operation reads the counter and its own lease in one `HMGET`, sets TTLs only when the counter is new
 * or its expiry moved, and leaves lapsed leases in the total until they would change an answer:
 * lapsed leases only ever make the total larger, so a reservation that fits with them counted fits
 * without them, and they are taken out (the READ_LIVE step) only when it would not.
 */
const LEASE_FUNCTIONS = `
local function fmt(x) return string.format('%.17g', x) end
local function read(ck, lk, now, field)
  local fields = redis.call('HMGET', ck, 'v', 'e', field)
  local v, e = 0, 0
  local live = fields[1] and fields[2] and tonumber(fields[2]) > now
  if live then
    v = tonumber(fields[1]); e = tonumber(fields[2])
  elseif fields[1] then
    redis.call('DEL', ck, lk)
    fields[3] = false
  end
  return v, e, live, fields[3]
end
local function lapseOut(ck, lk, now, v)
  local lapsed = redis.call('ZRANGEBYSCORE', lk, '-inf', now)
  for _, id in ipairs(lapsed) do
    v = v - tonumber(redis.call('HGET', ck, 'a:' .. id) or '0')
    redis.call('HDEL', ck, 'a:' .. id)
  end
  if v < 0 then v = 0 end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', lk, '-inf', now)
    redis.call('HSET', ck, 'v', fmt(v))
  end
  return v
end
local function expiry(now, grace, e, wanted)
  local moved = wanted > e
  if moved then e = wanted end
  local ttl = math.floor(e - now + grace)
  if ttl < 1 then ttl = 1 end
  return e, moved, ttl
end
local function reserve(ck, lk, now, grace, wanted, amountText, limit, id, untilText)
  local v, e, live = read(ck, lk, now, 'e')
  local amount = tonumber(amountText)
  if v + amount > limit then
    v = lapseOut(ck, lk, now, v)
    if v + amount > limit then return 0, fmt(v) end
  end
  v = v + amount
  local moved, ttl
  e, moved, ttl = expiry(now, grace, e, wanted)
  redis.call('HSET', ck, 'v', fmt(v), 'e', fmt(e), 'a:' .. id, amountText)
  redis.call('ZADD', lk, untilText, id)
  -- The lease set may be new (it vanishes when its last lease is settled): it always gets the TTL.
  redis.call('PEXPIRE', lk, ttl)
  if moved or not live then redis.call('PEXPIRE', ck, ttl) end
  return 1, fmt(v)
end
-- A lease that lapsed but is still held is swapped for the cost as a live one is; one already taken
-- out adds only the cost: either way nothing is given back twice.
local function settle(ck, lk, now, grace, wanted, id, spentText)
  local v, e, live, held = read(ck, lk, now, 'a:' .. id)
  if held then
    v = v - tonumber(held)
    redis.call('HDEL', ck, 'a:' .. id)
    redis.call('ZREM', lk, id)
  end
  v = v + tonumber(spentText)
  if v < 0 then v = 0 end
  local moved, ttl
  e, moved, ttl = expiry(now, grace, e, wanted)
  redis.call('HSET', ck, 'v', fmt(v), 'e', fmt(e))
  if moved or not live then
    redis.call('PEXPIRE', ck, ttl)
    if redis.call('EXISTS', lk) == 1 then redis.call('PEXPIRE', lk, ttl) end
  end
  return fmt(v)
end
`;

/** KEYS: counter, leases. ARGV: now, grace, expiresAt, amount, limit, lease id, lease until. Returns {granted 0|1, total}. */
export const RESERVE_LEASE = script(`${LEASE_FUNCTIONS}
local granted, total = reserve(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7])
return {granted, total}
`);

/** KEYS: counter, leases. ARGV: now, grace, expiresAt, lease id, spent. Returns the total. */
export const SETTLE_LEASE = script(`${LEASE_FUNCTIONS}
return settle(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
`);

/**
 * KEYS: each counter of the batch once, then its leases (counter i at 2i-1, its leases at 2i). ARGV:
 * grace, then every operation in one text, a line each, fields separated by spaces: `r <counter> now
 * expiresAt amount limit leaseId leaseUntil` or `s <counter> now expiresAt leaseId spent` (lease ids
 * and numbers hold no space). Runs them in order, atomically as a whole. Returns one text, a line per
 * operation: `granted total` for a reservation (granted 0|1), `total` for a settlement. One argument
 * and one string each way: the client's cost is per argument and per reply element (about 0.2 µs
 * each on the gateway's thread), and a batch of 20 operations took ~200 arguments and 40 replies.
 */
export const LEASE_BATCH = script(`${LEASE_FUNCTIONS}
local grace = tonumber(ARGV[1])
local out = {}
for line in string.gmatch(ARGV[2], '[^\\n]+') do
  -- One match per line, its fields as captures: no table, no iterator per field.
  if string.byte(line, 1) == 114 then
    local counter, now, wanted, amount, limit, id, untilText = string.match(line, '^r (%d+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    local at = tonumber(counter) * 2
    local granted, total = reserve(KEYS[at - 1], KEYS[at], tonumber(now), grace, tonumber(wanted), amount, tonumber(limit), id, untilText)
    out[#out + 1] = granted .. ' ' .. total
  else
    local counter, now, wanted, id, spent = string.match(line, '^s (%d+) (%S+) (%S+) (%S+) (%S+)$')
    local at = tonumber(counter) * 2
    out[#out + 1] = settle(KEYS[at - 1], KEYS[at], tonumber(now), grace, tonumber(wanted), id, spent)
  end
end
return table.concat(out, '\\n')
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
