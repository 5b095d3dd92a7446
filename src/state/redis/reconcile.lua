-- reconcile: budget usage counted locally while Redis was unreachable, added back once it
-- answers again (best effort). KEYS[1]: the budget base. ARGV: 1 period start, 2 amount,
-- 3 expiry (ms since epoch: the period's end plus a day). Returns the new `used`.
local bkey = KEYS[1] .. ':' .. ARGV[1]
local used = redis.call('HINCRBY', bkey, 'used', ARGV[2])
redis.call('PEXPIREAT', bkey, tonumber(ARGV[3]))
return used
