-- admit: the whole check-and-charge of one request, all-or-nothing (docs/SCALING.md). The
-- arithmetic is the one of src/limits/algorithms.* (LIMITS spec); the clock is Redis TIME.
--
-- KEYS: when the request has a key, its 6 keys: rpm (string: "<tat>:<interval>"), rpd (same), tpm
--   (hash: level, ts), tpd (hash), conc (zset: lease id -> expiry), budget base (the period's
--   hash is <base>:<period-start-ms>, named here from TIME: same hash tag, same slot); then 3
--   per candidate target: conc, rpm, tpm.
--   Then the keys of the settlements it carries.
-- ARGV: 1 now (0 = TIME; tests pass a clock), 2 lease id, 3 lease ttl ms, 4 budget period
--   start (0 = from the clock; tests), 5 has key (1/0), 6 number of targets, 7 token estimate,
--   8-16 the key: rpm, rpd, burst, tpm, tpd, concurrency, budget amount, budget period
--   (1 day, 2 week, 3 month), budget cost without a target; then 4 per target: rpm, tpm,
--   concurrency, budget cost of the key when this target is chosen. A limit of 0 is none.
--   Then the number of carried settlements (absent = 0) and 15 arguments per settlement.
-- Carried settlements: ends of earlier requests of the same connection (src/state/
-- settle_batch.hpp), applied first (the text of settlements.lua comes before this), whatever
-- the admission decides.
-- Checks the key's budget, concurrency, rpm, rpd, tpm, tpd in this order, then the targets in
-- the order given (concurrency, rpm, tpm): the first with room is chosen. Nothing is written
-- unless everything passed.
-- Returns {admitted (1/0), refusal (0 none, 1 budget, 2 concurrency, 3 rpm, 4 rpd, 5 tpm,
--   6 tpd, 7 every target full), retry_after ms, chosen target (0-based, -1 none), now,
--   budget period start, then the x-ratelimit numbers (-1 = absent): limit, remaining, reset
--   of requests (rpm, else rpd), the same of tokens (tpm, else tpd)}. Where no write can pass
--   (READONLY: a read-only replica after a failover; MISCONF; NOREPLICAS), the error of its
--   first write: nothing ran, the carried settlements included (settle_all does not swallow
--   it).

local floor, ceil = math.floor, math.ceil
local now = tonumber(ARGV[1])
local now_us = now * 1000  -- GCRA times are microseconds (limits/algorithms.hpp)
if now == 0 then
  -- TIME's microseconds stay in now_us: a clock in whole ms spaced requests in whole ms
  -- (rpm 40,000 with burst 1 admitted one per 2 ms when they came back to back).
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  now = floor(now_us / 1000)
end
local lease = ARGV[2]
local lease_ttl = tonumber(ARGV[3])
local period_override = tonumber(ARGV[4])
local has_key = tonumber(ARGV[5]) == 1
local ntargets = tonumber(ARGV[6])
local est = tonumber(ARGV[7])
local MINUTE, DAY = 60000, 86400000

do
  local carried_at = 17 + 4 * ntargets
  local carried = tonumber(ARGV[carried_at]) or 0
  if carried > 0 then
    local _, refused = settle_all(now, carried, (has_key and 6 or 0) + 3 * ntargets, carried_at)
    if refused then return refused end  -- no write can pass: nothing ran
  end
end

-- Howard Hinnant's civil calendar algorithms (days since 1970-01-01 <-> y/m), UTC.
local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = (mp < 10) and (mp + 3) or (mp - 9)
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m > 2) and (m - 3) or (m + 9)
  local doy = floor((153 * mp + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy - 719468
end
-- Start of the calendar period holding `t`, and the next one's start.
local function period_bounds(kind, t)
  local days = floor(t / DAY)
  if kind == 1 then return days * DAY, (days + 1) * DAY end
  if kind == 2 then  -- ISO week: 1970-01-01 was a Thursday (Monday-based weekday 3)
    local start = days - (days + 3) % 7
    return start * DAY, (start + 7) * DAY
  end
  local y, m = civil_from_days(days)
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  return days_from_civil(y, m, 1) * DAY, days_from_civil(ny, nm, 1) * DAY
end

-- The GCRA state "<tat>:<interval>:u", in microseconds; "<tat>:<interval>" is milliseconds (an
-- older gateway, read as such), a bare "<tat>" older still (no interval). An older gateway
-- reads this one's state as absent. A reload that changed the limit keeps the number of
-- requests counted, not the time they stand for: the time still ahead is rescaled to the new
-- interval (limits::gcra_rescale).
local function gcra_tat(key, I)
  local v = redis.call('GET', key)
  if not v then return 0 end
  local tat, was = string.match(v, '^(%-?%d+):(%d+):u$')
  if tat then
    tat, was = tonumber(tat), tonumber(was)
  else
    tat, was = string.match(v, '^(%-?%d+):(%d+)$')
    if not tat then return (tonumber(v) or 0) * 1000 end
    tat, was = tonumber(tat) * 1000, tonumber(was) * 1000
  end
  if was > 0 and was ~= I and tat > now_us then tat = now_us + floor((tat - now_us) * I / was) end
  return tat
end

-- A wait in microseconds, in milliseconds rounded up.
local function ms_up(us)
  if us <= 0 then return 0 end
  return ceil(us / 1000)
end

-- GCRA, times in microseconds (period in ms): {ok, tat to store, retry_after ms, limit,
-- remaining, reset ms, interval}.
local function gcra(key, limit, burst, period)
  local I = ceil(period * 1000 / limit)
  if I < 1 then I = 1 end
  local b = burst > 0 and burst or limit
  -- (b - 1) * I capped at 2^61 us (about 70,000 years), as limits::make_gcra does.
  local window = math.min((b - 1) * I, 2305843009213693952) + I
  local tat = gcra_tat(key, I)
  local t = tat > now_us and tat or now_us
  local new_tat = t + I
  if new_tat - now_us <= window then
    return {true, new_tat, 0, limit, math.max(0, floor((window - (new_tat - now_us)) / I)),
            ms_up(new_tat - now_us), I}
  end
  return {false, tat, math.max(1, ms_up(new_tat - window - now_us)), limit,
          math.max(0, floor((window - (t - now_us)) / I)), ms_up(t - now_us)}
end

-- Token bucket: {ok, level to store, retry_after, limit, remaining, reset}.
local function bucket(key, cap, period)
  local rate = cap / period
  local st = redis.call('HMGET', key, 'level', 'ts')
  local level, ts = tonumber(st[1]), tonumber(st[2])
  if level == nil then
    level = cap
  elseif now > ts then
    level = math.min(cap, level + (now - ts) * rate)
  end
  local want = est > cap and cap or est
  local function headers(l)
    local rem = l <= 0 and 0 or floor(l + 1e-9)
    local reset = l >= cap and 0 or ceil((cap - l) / rate - 1e-9)
    return rem, reset
  end
  if level >= want then
    local rem, reset = headers(level - want)
    return {true, level - want, 0, cap, rem, reset}
  end
  local rem, reset = headers(level)
  return {false, level, math.max(1, ceil((want - level) / rate)), cap, rem, reset}
end

-- Concurrency: expired leases go first. {ok, nil, retry_after}. A slot frees when any request
-- in flight ends, which nothing here can tell: at most 1 s (as in memory), or sooner when the
-- oldest lease expires (its holder is gone), never the lease's whole ttl.
local function leases(key, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) < limit then return {true} end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {false, nil, math.min(1000, math.max(1, tonumber(first[2]) - now))}
end

local writes = {}
local function charge(kind, key, value, ttl)
  writes[#writes + 1] = {kind, key, value, ttl}
end
local hdr = {-1, -1, -1, -1, -1, -1}
local period_start = 0
local kbase = 0

local function refuse(kind, retry)
  return {0, kind, retry, -1, now, period_start, hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6]}
end

local budget_key, cost_default
if has_key then
  kbase = 6
  local rpm, rpd, burst = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
  local tpm, tpd, conc = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
  local amount, kind = tonumber(ARGV[14]), tonumber(ARGV[15])
  cost_default = ARGV[16]  -- kept as text: HINCRBY gets the exact integer
  -- Every check is evaluated (reads only) so the headers are complete; the first refusal
  -- in the spec's order wins.
  local checks = {}
  if amount > 0 then
    local start, next_start = period_bounds(kind, now)
    if period_override > 0 then start = period_override end
    period_start = start
    budget_key = KEYS[6] .. ':' .. start
    local st = redis.call('HMGET', budget_key, 'used', 'reserved')
    local left = amount - (tonumber(st[1]) or 0) - (tonumber(st[2]) or 0)
    checks[1] = {left > 0, next_start + DAY, next_start - now}
  end
  if conc > 0 then checks[2] = leases(KEYS[5], conc) end
  if rpm > 0 then checks[3] = gcra(KEYS[1], rpm, burst, MINUTE) end
  if rpd > 0 then checks[4] = gcra(KEYS[2], rpd, burst, DAY) end
  if tpm > 0 then checks[5] = bucket(KEYS[3], tpm, MINUTE) end
  if tpd > 0 then checks[6] = bucket(KEYS[4], tpd, DAY) end
  local req = checks[3] or checks[4]
  if req then hdr[1], hdr[2], hdr[3] = req[4], req[5], req[6] end
  local tok = checks[5] or checks[6]
  if tok then hdr[4], hdr[5], hdr[6] = tok[4], tok[5], tok[6] end
  for i = 1, 6 do
    local c = checks[i]
    if c and not c[1] then return refuse(i, c[3]) end
  end
  if checks[2] then charge('lease', KEYS[5]) end
  if checks[3] then charge('tat', KEYS[1], checks[3][2], checks[3][7]) end
  if checks[4] then charge('tat', KEYS[2], checks[4][2], checks[4][7]) end
  if checks[5] then charge('bucket', KEYS[3], checks[5][2], checks[5][6]) end
  if checks[6] then charge('bucket', KEYS[4], checks[6][2], checks[6][6]) end
end

local chosen = -1
local cost = cost_default
if ntargets > 0 then
  local best_retry = nil
  for j = 0, ntargets - 1 do
    local a = 17 + j * 4
    local k = kbase + j * 3
    local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local c, r, b
    local ok = true
    local retry = 0
    if conc > 0 then
      c = leases(KEYS[k + 1], conc)
      if not c[1] then ok, retry = false, c[3] end
    end
    if ok and rpm > 0 then
      r = gcra(KEYS[k + 2], rpm, 0, MINUTE)
      if not r[1] then ok, retry = false, r[3] end
    end
    if ok and tpm > 0 then
      b = bucket(KEYS[k + 3], tpm, MINUTE)
      if not b[1] then ok, retry = false, b[3] end
    end
    if ok then
      chosen = j
      cost = ARGV[a + 3]
      if c then charge('lease', KEYS[k + 1]) end
      if r then charge('tat', KEYS[k + 2], r[2], r[7]) end
      if b then charge('bucket', KEYS[k + 3], b[2], b[6]) end
      break
    end
    if best_retry == nil or retry < best_retry then best_retry = retry end
  end
  if chosen < 0 then return refuse(7, best_retry) end
end

if budget_key then
  local _, next_start = period_bounds(tonumber(ARGV[15]), now)
  charge('budget', budget_key, cost, next_start + DAY)
end

-- Everything passed: charge it all.
for _, w in ipairs(writes) do
  local kind, key = w[1], w[2]
  if kind == 'tat' then
    redis.call('SET', key, string.format('%d:%d:u', w[3], w[4]), 'PX', math.max(1, ms_up(w[3] - now_us)))
  elseif kind == 'bucket' then
    redis.call('HSET', key, 'level', w[3], 'ts', now)
    redis.call('PEXPIRE', key, w[4] + 1000)
  elseif kind == 'lease' then
    redis.call('ZADD', key, now + lease_ttl, lease)
    redis.call('PEXPIRE', key, lease_ttl)  -- this lease expires last
  elseif kind == 'budget' then
    redis.call('HINCRBY', key, 'reserved', w[3])
    redis.call('PEXPIREAT', key, w[4])
  end
end
return {1, 0, 0, chosen, now, period_start, hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6]}
