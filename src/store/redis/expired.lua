-- Lists up to ARGV[1] jobs whose lease deadline has passed, by Redis's clock.
-- KEYS[1] the leases (sorted set scored by deadline, ms since epoch).
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
