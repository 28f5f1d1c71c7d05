// The Lua scripts behind the Redis counters. Each runs atomically on the server, so a reservation
// checks and adds in one step whatever number of gateways call it at once. Time comes from the
// caller (ARGV "now"): expiry is judged by the gateway's clock, which keeps tests with a manual
// clock exact; the key's Redis TTL (`expiresAt - now + grace`) only reclaims memory afterwards.
//
// A counter is a hash {v = total, e = expiresAt, r = what live leases hold of v, s = 1 once seeded}.
// Numbers travel as strings ('%.17g') because Redis truncates Lua numbers to integers on the way out.

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
 * `<id>:<amount>`, so the set alone says what to take out.
 */
const MEMBER_AMOUNT = `
local function memberAmount(member)
  return tonumber(string.match(member, ':([^:]*)$') or '0') or 0
end
`;

/**
 * Reads a live counter into `v` (its total), `e` (its end), `r` (what its live leases hold of `v`)
 * and `seeded` (field `s`: `seed` added the store's booked spend). A counter expired by the caller's
 * clock reads 0, and so does one that is gone: either way its lease set is dropped with it, since a
 * lease set without its counter (Redis lost or evicted the counter) names amounts no total holds any
 * more. Then lapsed leases (KEYS[2], a sorted set scored by when each lapses) leave the total;
 * `changed` says so, for a script that would otherwise write nothing.
 */
const READ_LIVE = `${MEMBER_AMOUNT}
local now = tonumber(ARGV[1])
local found = redis.call('HMGET', KEYS[1], 'v', 'e', 's', 'r')
local v, e, r, seeded, changed = 0, 0, 0, false, false
if found[1] and found[2] and tonumber(found[2]) > now then
  v = tonumber(found[1]); e = tonumber(found[2]); seeded = found[3] == '1'; r = tonumber(found[4] or '0') or 0
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  for _, member in ipairs(lapsed) do
    local amount = memberAmount(member)
    v = v - amount; r = r - amount
  end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    changed = true
  end
  if v < 0 then v = 0 end
  if r < 0 then r = 0 end
else
  redis.call('DEL', KEYS[1], KEYS[2])
end
`;

/** The total, end and leased part after a read that took lapsed leases out (what a refusal leaves behind). */
const WRITE_CHANGED = `
if changed then redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v), 'r', string.format('%.17g', r)) end
`;

/** Writes `v` with the later of its expiries, and a TTL that outlives it by the grace. */
const WRITE = `
local wanted = tonumber(ARGV[3])
if wanted > e then e = wanted end
if r > v then r = v end
local ttl = math.floor(e - now + tonumber(ARGV[2]))
if ttl < 1 then ttl = 1 end
redis.call('HSET', KEYS[1], 'v', string.format('%.17g', v), 'e', string.format('%.17g', e), 'r', string.format('%.17g', r))
redis.call('PEXPIRE', KEYS[1], ttl)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
`;

/**
 * KEYS: counter, leases. ARGV: now, grace, expiresAt, amount, limit, seeded (1: only on a seeded
 * counter). Returns {code, total, leased}: code 1 granted, 0 refused, 2 not seeded (nothing added).
 */
export const RESERVE = script(`${READ_LIVE}
if ARGV[6] == '1' and not seeded then
${WRITE_CHANGED}
  return {2, string.format('%.17g', v), string.format('%.17g', r)}
end
local amount = tonumber(ARGV[4])
if v + amount > tonumber(ARGV[5]) then
${WRITE_CHANGED}
  return {0, string.format('%.17g', v), string.format('%.17g', r)}
end
v = v + amount
${WRITE}
return {1, string.format('%.17g', v), string.format('%.17g', r)}
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
${WRITE_CHANGED}
return string.format('%.17g', v)
`);

/** Budgets are whole nano-dollars, exact in a double below 2^53: '%d' (a 64-bit long in Redis's Lua) writes them exactly at half the cost of '%.17g'. */
const FMT = `
local function fmt(x)
  if x % 1 == 0 and x > -9007199254740992 and x < 9007199254740992 then return string.format('%d', x) end
  return string.format('%.17g', x)
end
`;

/**
 * KEYS: each counter, then its leases (counter i at 2i-1, its leases at 2i). ARGV: now, grace,
 * expiresAt, then each counter's amount in order. A counter not seeded yet gets its amount and the
 * mark (field `s`); a seeded one is left alone, so two instances seeding at once add once. A counter
 * that is gone starts from its amount, without the lease set it may have left. Returns how many it
 * seeded.
 */
export const SEED = script(`${FMT}
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local count = 0
for index = 1, #KEYS / 2 do
  local ck, lk = KEYS[index * 2 - 1], KEYS[index * 2]
  local found = redis.call('HMGET', ck, 'v', 'e', 's', 'r')
  local live = found[1] and found[2] and tonumber(found[2]) > now
  if not (live and found[3] == '1') then
    local v, e, r = 0, 0, 0
    if live then
      v = tonumber(found[1]); e = tonumber(found[2]); r = tonumber(found[4] or '0') or 0
    else
      redis.call('DEL', ck, lk)
    end
    v = v + tonumber(ARGV[3 + index])
    if wanted > e then e = wanted end
    local ttl = math.floor(e - now + grace)
    if ttl < 1 then ttl = 1 end
    redis.call('HSET', ck, 'v', fmt(v), 'e', fmt(e), 's', '1', 'r', fmt(r))
    redis.call('PEXPIRE', ck, ttl)
    if live and redis.call('EXISTS', lk) == 1 then redis.call('PEXPIRE', lk, ttl) end
    count = count + 1
  end
end
return count
`);

/**
 * KEYS: each counter of the batch once, then its leases (counter i at 2i-1, its leases at 2i). ARGV:
 * grace, then every operation in one text, a line each, fields separated by spaces: `r <counter> now
 * expiresAt amount limit member leaseUntil seeded` or `s <counter> now expiresAt member spent`, where a
 * member is `<lease id>:<amount>` (`-` settles a lease this gateway does not hold: the spend alone) and
 * `seeded` is 1 when the reservation needs a seeded counter. Runs them in order, atomically as a
 * whole. Returns one text, a line per operation: `code total leased` for a reservation (code 1
 * granted, 0 refused, 2 not seeded: nothing added; `leased` what live leases hold of the total),
 * `total` for a settlement.
 *
 * Every `redis.call` from Lua costs Redis about a microsecond beyond the command itself, and a
 * counter's hash holding each live lease as a field (`a:<id>`, up to session 8) made every write move
 * the whole listpack: ~22 µs of Redis CPU per budgeted request at 64 in flight. So each counter of
 * the batch is read once (HMGET), its operations are applied in Lua, and it is written once (HSET,
 * one variadic ZADD of the new leases); a settlement costs one ZREM, whose answer says whether the
 * lease was still held. Lapsed leases stay in the total until they would change an answer: they only
 * ever make it larger, so a reservation that fits with them counted fits without them, and they are
 * taken out only when it would not. The counter's `r` field keeps what its live leases hold, so a
 * refusal can say how much of the total is only in flight without reading the lease set.
 */
export const LEASE_BATCH = script(`${MEMBER_AMOUNT}${FMT}
local grace = tonumber(ARGV[1])
local states = {}
local order = {}
local function stateOf(index, now)
  local state = states[index]
  if state then return state end
  local ck, lk = KEYS[index * 2 - 1], KEYS[index * 2]
  local fields = redis.call('HMGET', ck, 'v', 'e', 's', 'r')
  state = { ck = ck, lk = lk, v = 0, e = 0, r = 0, seeded = false, live = false, touched = false, wanted = 0, now = now, adds = {}, pending = {} }
  if fields[1] and fields[2] and tonumber(fields[2]) > now then
    state.v = tonumber(fields[1]); state.e = tonumber(fields[2]); state.live = true
    state.seeded = fields[3] == '1'; state.r = tonumber(fields[4] or '0') or 0
  else
    -- Expired, or gone while its lease set stayed: those leases are in no total any more.
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
  for _, member in ipairs(lapsed) do
    local amount = memberAmount(member)
    state.v = state.v - amount; state.r = state.r - amount
  end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', state.lk, '-inf', now)
    state.touched = true
  end
  if state.v < 0 then state.v = 0 end
  if state.r < 0 then state.r = 0 end
end
local out = {}
for line in string.gmatch(ARGV[2], '[^\\n]+') do
  -- One match per line, its fields as captures: no table, no iterator per field.
  if string.byte(line, 1) == 114 then
    local counter, nowText, wanted, amountText, limit, member, untilText, needsSeed = string.match(line, '^r (%d+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    local now = tonumber(nowText)
    local state = stateOf(tonumber(counter), now)
    if needsSeed == '1' and not state.seeded then
      out[#out + 1] = '2 ' .. fmt(state.v) .. ' ' .. fmt(state.r)
    else
      local amount = tonumber(amountText)
      local fits = state.v + amount <= tonumber(limit)
      if not fits then
        lapseOut(state, now)
        fits = state.v + amount <= tonumber(limit)
      end
      if fits then
        state.v = state.v + amount
        state.r = state.r + amount
        state.touched = true
        local adds = state.adds
        adds[#adds + 1] = untilText
        adds[#adds + 1] = member
        state.pending[member] = true
        out[#out + 1] = '1 ' .. fmt(state.v) .. ' ' .. fmt(state.r)
        if tonumber(wanted) > state.wanted then state.wanted = tonumber(wanted) end
      else
        out[#out + 1] = '0 ' .. fmt(state.v) .. ' ' .. fmt(state.r)
      end
    end
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
      if held then
        local amount = memberAmount(member)
        state.v = state.v - amount; state.r = state.r - amount
      end
    end
    state.v = state.v + tonumber(spent)
    if state.v < 0 then state.v = 0 end
    if state.r < 0 then state.r = 0 end
    state.touched = true
    out[#out + 1] = fmt(state.v)
    if tonumber(wanted) > state.wanted then state.wanted = tonumber(wanted) end
    if now > state.now then state.now = now end
  end
end
for _, index in ipairs(order) do
  local state = states[index]
  -- A counter only refused (or not seeded) is left as it was: nothing to write, nothing created.
  if state.touched then
    local e = state.e
    local moved = state.wanted > e
    if moved then e = state.wanted end
    if state.r > state.v then state.r = state.v end
    local ttl = math.floor(e - state.now + grace)
    if ttl < 1 then ttl = 1 end
    redis.call('HSET', state.ck, 'v', fmt(state.v), 'e', fmt(e), 'r', fmt(state.r))
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
