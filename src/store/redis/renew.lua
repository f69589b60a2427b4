-- Extends a running job's lease, creating it again if Redis lost it (a restart without persistence).
-- KEYS[1] the leases (sorted set scored by deadline, ms since epoch); ARGV[1] job id,
-- ARGV[2] lease length in ms. Redis's own clock sets the deadline, as in claim.lua.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
