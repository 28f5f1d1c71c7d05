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
 * What a lapsed lease held. A lease is a member of the counter's lease set (KEYS[2]) named
 * `<id>:<amount>`, so the set alone says what to take out. A member without a colon is a lease written
 * before that (up to session 8): its amount is the counter's `a:<id>` field, dropped with it.
 */
const MEMBER_AMOUNT = `
local function memberAmount(ck, member)
  local amount = string.match(member, ':([^:]*)$')
  if amount then return tonumber(amount) or 0 end
  local field = 'a:' .. member
  local legacy = tonumber(redis.call('HGET', ck, field) or '0') or 0
  redis.call('HDEL', ck, field)
  return legacy
end
`;

/**
 * Reads a live counter into `v` and `e` (0 and 0 when absent or expired by the caller's clock). An
 * expired counter is dropped with its leases. Then lapsed leases (KEYS[2], a sorted set of leases
 * scored by when they lapse) leave the total.
 */
const READ_LIVE = `${MEMBER_AMOUNT}
local now = tonumber(ARGV[1])
local found = redis.call('HMGET', KEYS[1], 'v', 'e')
local v, e = 0, 0
if found[1] and found[2] and tonumber(found[2]) > now then
  v = tonumber(found[1]); e = tonumber(found[2])
elseif found[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, member in ipairs(lapsed) do v = v - memberAmount(KEYS[1], member) end
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
 * KEYS: each counter of the batch once, then its leases (counter i at 2i-1, its leases at 2i). ARGV:
 * grace, then every operation in one text, a line each, fields separated by spaces: `r <counter> now
 * expiresAt amount limit member leaseUntil` or `s <counter> now expiresAt member spent`, where a
 * member is `<lease id>:<amount>` (`-` settles a lease this gateway does not hold: the spend alone).
 * Runs them in order, atomically as a whole. Returns one text, a line per operation: `granted total`
 * for a reservation (granted 0|1), `total` for a settlement.
 *
 * Every `redis.call` from Lua costs Redis about a microsecond beyond the command itself, and a
 * counter's hash holding each live lease as a field (`a:<id>`, up to session 8) made every write move
 * the whole listpack: ~22 µs of Redis CPU per budgeted request at 64 in flight. So each counter of
 * the batch is read once (HMGET), its operations are applied in Lua, and it is written once (HSET,
 * one variadic ZADD of the new leases); a settlement costs one ZREM, whose answer says whether the
 * lease was still held. Lapsed leases stay in the total until they would change an answer: they only
 * ever make it larger, so a reservation that fits with them counted fits without them, and they are
 * taken out only when it would not.
 */
export const LEASE_BATCH = script(`${MEMBER_AMOUNT}
-- Budgets are whole nano-dollars, exact in a double below 2^53: '%d' (a 64-bit long in Redis's Lua)
-- writes them exactly at half the cost of '%.17g'.
local function fmt(x)
  if x % 1 == 0 and x > -9007199254740992 and x < 9007199254740992 then return string.format('%d', x) end
  return string.format('%.17g', x)
end
local grace = tonumber(ARGV[1])
local states = {}
local order = {}
local function stateOf(index, now)
  local state = states[index]
  if state then return state end
  local ck, lk = KEYS[index * 2 - 1], KEYS[index * 2]
  local fields = redis.call('HMGET', ck, 'v', 'e')
  state = { ck = ck, lk = lk, v = 0, e = 0, live = false, wanted = 0, now = now, adds = {}, pending = {} }
  if fields[1] and fields[2] and tonumber(fields[2]) > now then
    state.v = tonumber(fields[1]); state.e = tonumber(fields[2]); state.live = true
  elseif fields[1] then
    redis.call('DEL', ck, lk)
  end
  states[index] = state
  order[#order + 1] = index
  return state
end
-- Only when a reservation would not fit: the lapsed leases leave the total (reservations of this
-- batch are not written yet, and none of them has lapsed).
local function lapseOut(state, now)
  local lapsed = redis.call('ZRANGEBYSCORE', state.lk, '-inf', now)
  for _, member in ipairs(lapsed) do state.v = state.v - memberAmount(state.ck, member) end
  if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', state.lk, '-inf', now) end
  if state.v < 0 then state.v = 0 end
end
local out = {}
for line in string.gmatch(ARGV[2], '[^\\n]+') do
  -- One match per line, its fields as captures: no table, no iterator per field.
  if string.byte(line, 1) == 114 then
    local counter, nowText, wanted, amountText, limit, member, untilText = string.match(line, '^r (%d+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    local now = tonumber(nowText)
    local state = stateOf(tonumber(counter), now)
    local amount = tonumber(amountText)
    local fits = state.v + amount <= tonumber(limit)
    if not fits then
      lapseOut(state, now)
      fits = state.v + amount <= tonumber(limit)
    end
    if fits then
      state.v = state.v + amount
      local adds = state.adds
      adds[#adds + 1] = untilText
      adds[#adds + 1] = member
      state.pending[member] = true
      out[#out + 1] = '1 ' .. fmt(state.v)
    else
      out[#out + 1] = '0 ' .. fmt(state.v)
    end
    if tonumber(wanted) > state.wanted then state.wanted = tonumber(wanted) end
    if now > state.now then state.now = now end
  else
    local counter, nowText, wanted, member, spent = string.match(line, '^s (%d+) (%S+) (%S+) (%S+) (%S+)$')
    local now = tonumber(nowText)
    local state = stateOf(tonumber(counter), now)
    if member ~= '-' then
      local held = false
      if state.pending[member] then
        -- Reserved earlier in this very batch: it is not in the set yet, so it is taken off the adds.
        state.pending[member] = nil
        local adds = state.adds
        for index = 2, #adds, 2 do
          if adds[index] == member then
            table.remove(adds, index); table.remove(adds, index - 1)
            held = true
            break
          end
        end
      else
        held = redis.call('ZREM', state.lk, member) == 1
      end
      if held then state.v = state.v - memberAmount(state.ck, member) end
    end
    state.v = state.v + tonumber(spent)
    if state.v < 0 then state.v = 0 end
    out[#out + 1] = fmt(state.v)
    if tonumber(wanted) > state.wanted then state.wanted = tonumber(wanted) end
    if now > state.now then state.now = now end
  end
end
for _, index in ipairs(order) do
  local state = states[index]
  local e = state.e
  local moved = state.wanted > e
  if moved then e = state.wanted end
  local ttl = math.floor(e - state.now + grace)
  if ttl < 1 then ttl = 1 end
  redis.call('HSET', state.ck, 'v', fmt(state.v), 'e', fmt(e))
  if moved or not state.live then redis.call('PEXPIRE', state.ck, ttl) end
  local adds = state.adds
  -- unpack has a bound on its arguments: a large batch is added in slices.
  for first = 1, #adds, 1000 do
    redis.call('ZADD', state.lk, unpack(adds, first, math.min(first + 999, #adds)))
  end
  -- The lease set may be new (it vanishes when its last lease is settled): it gets the TTL whenever a
  -- lease was added or the counter's end moved.
  if #adds > 0 or ((moved or not state.live) and redis.call('EXISTS', state.lk) == 1) then redis.call('PEXPIRE', state.lk, ttl) end
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
