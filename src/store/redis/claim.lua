-- Takes the oldest queued job and leases it to the caller, in one step so no job is lost between.
-- KEYS[1] the queue (a list), KEYS[2] the leases (a sorted set scored by deadline, ms since epoch)
-- ARGV[1] lease length in ms. Redis's own clock sets the deadline, so instances need not agree.
local id = redis.call('RPOP', KEYS[1])
if not id then
  return false
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[1]), id)
return id
