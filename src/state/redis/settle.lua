-- settle: settlements no admission carried within the batch delay, in one call (the text of
-- settlements.lua comes before this; src/state/settle_batch.hpp).
-- KEYS: the settlements' keys, in order. ARGV: 1 the number of settlements, then 15 per
-- settlement (settlements.lua).
-- Returns how many were applied, or the error every write met (READONLY, MISCONF, NOREPLICAS:
-- settlements.lua; none was).

local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local failed, refused = settle_all(clock, n, 0, 1)
if refused then return refused end
return n - failed
