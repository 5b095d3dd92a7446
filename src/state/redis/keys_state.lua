-- keys_state: one key's shared counters as admit.lua would see them now, for GET /admin/v1/keys.
-- Read-only: nothing is written, refilled or expired (an expired lease is not counted, it is not
-- removed). The arithmetic is admit.lua's (GCRA, token bucket, leases, calendar periods).
--
-- KEYS: the key's 6 keys in admit.lua's order: rpm, rpd, tpm, tpd, conc, budget base.
-- ARGV: 1 now (0 = TIME; tests pass a clock), 2 rpm, 3 rpd, 4 burst, 5 tpm, 6 tpd,
--   7 budget period (0 no budget, 1 day, 2 week, 3 month). A limit of 0 is none.
-- Returns {now, rpm remaining, rpd remaining, tpm remaining, tpd remaining (-1 = no such
--   limit), leases in flight, budget used, budget reserved (as stored: bulk strings, "0" when
--   none, so amounts beyond 2^53 stay exact), budget period start, period end (0 without budget)}.

local floor, ceil = math.floor, math.ceil
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
end
local now_us = now * 1000  -- GCRA times are microseconds (admit.lua)
local MINUTE, DAY = 60000, 86400000

-- Howard Hinnant's civil calendar algorithms, as in admit.lua.
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
local function period_bounds(kind, t)
  local days = floor(t / DAY)
  if kind == 1 then return days * DAY, (days + 1) * DAY end
  if kind == 2 then
    local start = days - (days + 3) % 7
    return start * DAY, (start + 7) * DAY
  end
  local y, m = civil_from_days(days)
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  return days_from_civil(y, m, 1) * DAY, days_from_civil(ny, nm, 1) * DAY
end

-- GCRA: the requests a burst could take now (admit.lua's gcra_tat and window, in us).
local function gcra_remaining(key, limit, burst, period)
  if limit <= 0 then return -1 end
  local I = ceil(period * 1000 / limit)
  if I < 1 then I = 1 end
  local b = burst > 0 and burst or limit
  -- (b - 1) * I capped at 2^61 us (about 70,000 years), as limits::make_gcra does.
  local window = math.min((b - 1) * I, 2305843009213693952) + I
  local tat = 0
  local v = redis.call('GET', key)
  if v then
    local t, was = string.match(v, '^(%-?%d+):(%d+):u$')
    if t then
      tat, was = tonumber(t), tonumber(was)
    else
      t, was = string.match(v, '^(%-?%d+):(%d+)$')
      if t then
        tat, was = tonumber(t) * 1000, tonumber(was) * 1000
      else
        tat, was = (tonumber(v) or 0) * 1000, 0
      end
    end
    if was > 0 and was ~= I and tat > now_us then tat = now_us + floor((tat - now_us) * I / was) end
  end
  local t = tat > now_us and tat or now_us
  return math.max(0, floor((window - (t - now_us)) / I))
end

-- Token bucket refilled to now: whole tokens left.
local function bucket_remaining(key, cap, period)
  if cap <= 0 then return -1 end
  local st = redis.call('HMGET', key, 'level', 'ts')
  local level, ts = tonumber(st[1]), tonumber(st[2])
  if level == nil then
    level = cap
  elseif ts and now > ts then
    level = math.min(cap, level + (now - ts) * (cap / period))
  end
  return level <= 0 and 0 or floor(level + 1e-9)
end

local rpm, rpd, burst = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tpm, tpd, kind = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
-- Leases still valid: admit.lua drops those whose expiry is <= now before counting.
local inflight = redis.call('ZCOUNT', KEYS[5], '(' .. now, '+inf')
local used, reserved, start, next_start = '0', '0', 0, 0
if kind > 0 then
  start, next_start = period_bounds(kind, now)
  local st = redis.call('HMGET', KEYS[6] .. ':' .. start, 'used', 'reserved')
  used, reserved = st[1] or '0', st[2] or '0'
end
return {now, gcra_remaining(KEYS[1], rpm, burst, MINUTE), gcra_remaining(KEYS[2], rpd, burst, DAY),
        bucket_remaining(KEYS[3], tpm, MINUTE), bucket_remaining(KEYS[4], tpd, DAY), inflight,
        used, reserved, start, next_start}
