-- settlements: the end of admitted requests, applied in the order given. Not a script of its
-- own: its text is put before settle.lua's and admit.lua's (redis_backend.cpp), which call
-- settle_all.
-- Each settlement: KEYS, when it holds the key: the key's tpm, tpd, conc, budget base; when it
--   holds a target: the target's conc, tpm. ARGV (15): 1 now (0 = the calling script's clock;
--   tests pass one), 2 lease id, 3 budget period start (from admit), 4 mode (1 settle with the
--   actual usage, 0 release: every reservation is given back), 5 reserved tokens (the
--   estimate, clamped here per bucket), 6 actual tokens (-1 unknown: the reservation stays as
--   the charge), 7 has key, 8 key tpm, 9 key tpd, 10 key had a lease (1/0), 11 budget reserved
--   (in its unit), 12 budget actual (-1 unknown), 13 has target, 14 target tpm, 15 target had a
--   lease (1/0). Concurrency leases are removed in both modes.

local function settle_one(clock, k, a)
  local now = tonumber(ARGV[a + 1])
  if now == 0 then now = clock end
  local lease = ARGV[a + 2]
  local settle = tonumber(ARGV[a + 4]) == 1
  local est = tonumber(ARGV[a + 5])
  local actual = tonumber(ARGV[a + 6])

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

  if tonumber(ARGV[a + 7]) == 1 then
    local tpm, tpd = tonumber(ARGV[a + 8]), tonumber(ARGV[a + 9])
    if tpm > 0 then give_back(KEYS[k + 1], tpm, 60000) end
    if tpd > 0 then give_back(KEYS[k + 2], tpd, 86400000) end
    if tonumber(ARGV[a + 10]) == 1 then redis.call('ZREM', KEYS[k + 3], lease) end
    -- Amounts go to HINCRBY as the caller's text (a Lua number would print as 1e+14 when large).
    local reserved, spent = ARGV[a + 11], ARGV[a + 12]
    if tonumber(ARGV[a + 3]) > 0 then
      local bkey = KEYS[k + 4] .. ':' .. ARGV[a + 3]
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
    k = k + 4
  end
  if tonumber(ARGV[a + 13]) == 1 then
    if tonumber(ARGV[a + 15]) == 1 then redis.call('ZREM', KEYS[k + 1], lease) end
    local tpm = tonumber(ARGV[a + 14])
    if tpm > 0 then give_back(KEYS[k + 2], tpm, 60000) end
  end
end

-- Applies `n` settlements whose KEYS start after index k and whose ARGV start after index a.
-- One that fails (a key of the wrong type, say) is logged by Redis and skipped: the others,
-- and the admission carrying them, still go through. Returns how many failed, and, when a
-- write meets an error every write of the call meets, that error as an error reply for the
-- caller to return at once: nothing of the call was written, and the gateway keeps the
-- settlements as for a refusal (redis_backend.cpp refused_for_now). Those errors: READONLY (a
-- read-only replica, after a failover), MISCONF (writes stopped after a failed background
-- save), NOREPLICAS (fewer replicas than min-replicas-to-write); each holds for the whole call.
local writes_refused = {READONLY = true, MISCONF = true, NOREPLICAS = true}
local function settle_all(clock, n, k, a)
  local failed = 0
  for _ = 1, n do
    local ok, err = pcall(settle_one, clock, k, a)
    if not ok then
      if type(err) == 'table' then err = err.err end
      err = tostring(err)
      if writes_refused[string.match(err, '^%u+') or ''] then return failed, {err = err} end
      failed = failed + 1
      redis.log(redis.LOG_WARNING, 'openbridge settlement failed: ' .. err)
    end
    k = k + (tonumber(ARGV[a + 7]) == 1 and 4 or 0) + (tonumber(ARGV[a + 13]) == 1 and 2 or 0)
    a = a + 15
  end
  return failed
end
