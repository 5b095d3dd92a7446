-- renew: a long stream keeps its concurrency leases alive (every 10 s with the 30 s ttl).
-- KEYS: the conc zsets holding the lease. ARGV: 1 now (0 = TIME), 2 reservation id, 3 ttl ms.
-- Returns how many leases were still held (a lease that expired is not brought back).
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[3])
local held = 0
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ttl, ARGV[2]) == 1 then held = held + 1 end
  if redis.call('ZSCORE', KEYS[i], ARGV[2]) then
    redis.call('PEXPIRE', KEYS[i], ttl, 'GT')
  end
end
return held
