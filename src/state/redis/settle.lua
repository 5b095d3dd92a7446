-- settle: the end of an admitted request, sent pipelined without waiting for the reply.
-- Mode 1 settles with the actual usage, mode 0 releases (failed before any usage): every
-- reservation is given back. Concurrency leases are removed in both.
-- KEYS: when the reservation holds the key, its tpm, tpd, conc, budget base; when it holds a
--   target, the target's conc, tpm.
-- ARGV: 1 now (0 = TIME), 2 lease id, 3 budget period start (from admit), 4 mode (1/0),
--   5 reserved tokens (the estimate, clamped here per bucket), 6 actual tokens (-1 unknown:
--   the reservation stays as the charge), 7 has key, 8 key tpm, 9 key tpd, 10 key had a
--   lease (1/0), 11 budget reserved (in its unit), 12 budget actual (-1 unknown), 13 has
--   target, 14 target tpm, 15 target had a lease (1/0).
-- Returns 1.

local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local lease = ARGV[2]
local settle = tonumber(ARGV[4]) == 1
local est = tonumber(ARGV[5])
local actual = tonumber(ARGV[6])

-- Refill to now, then give back what the reservation took beyond the actual use (the level
-- may go below zero: a debt that refill pays off).
local function give_back(key, cap, period)
  local rate = cap / period
  local charged = est > cap and cap or est
  local used = 0
  if settle then used = actual < 0 and charged or actual end
  local st = redis.call('HMGET', key, 'level', 'ts')
  local level, ts = tonumber(st[1]), tonumber(st[2])
  if level == nil then
    level = cap
  elseif now > ts then
    level = math.min(cap, level + (now - ts) * rate)
  end
  level = math.min(cap, level + charged - used)
  redis.call('HSET', key, 'level', level, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil((cap - level) / rate) + 1000)
end

local k = 0
if tonumber(ARGV[7]) == 1 then
  local tpm, tpd = tonumber(ARGV[8]), tonumber(ARGV[9])
  if tpm > 0 then give_back(KEYS[1], tpm, 60000) end
  if tpd > 0 then give_back(KEYS[2], tpd, 86400000) end
  if tonumber(ARGV[10]) == 1 then redis.call('ZREM', KEYS[3], lease) end
  -- Amounts go to HINCRBY as the caller's text (a Lua number would print as 1e+14 when large).
  local reserved, spent = ARGV[11], ARGV[12]
  if tonumber(ARGV[3]) > 0 then
    local bkey = KEYS[4] .. ':' .. ARGV[3]
    -- Gone: a past period that expired; nothing to fix.
    if redis.call('EXISTS', bkey) == 1 then
      -- ("-0" is no integer to Redis.)
      if reserved ~= '0' and redis.call('HINCRBY', bkey, 'reserved', '-' .. reserved) < 0 then
        redis.call('HSET', bkey, 'reserved', 0)
      end
      if settle then
        redis.call('HINCRBY', bkey, 'used', tonumber(spent) < 0 and reserved or spent)
      end
    end
  end
  k = 4
end
if tonumber(ARGV[13]) == 1 then
  if tonumber(ARGV[15]) == 1 then redis.call('ZREM', KEYS[k + 1], lease) end
  local tpm = tonumber(ARGV[14])
  if tpm > 0 then give_back(KEYS[k + 2], tpm, 60000) end
end
return 1
