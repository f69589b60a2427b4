-- Takes the first queued job (highest priority, then earliest arrival) and leases it to the
-- caller, in one step so no job is lost between.
-- KEYS[1] the queue (a sorted set scored by priority band plus arrival, claimed lowest first),
-- KEYS[2] the leases (a sorted set scored by deadline, ms since epoch), KEYS[3] the list an
-- older version queued on, KEYS[4] the arrival counter
-- ARGV[1] lease length in ms, ARGV[2] the default priority's band.
-- Redis's own clock sets the deadline, so instances need not agree.
--
-- Jobs an older version left on the list (oldest at the right) move to the queue first, at the
-- default priority and in their order: during a rolling upgrade both versions' jobs are claimed.
while true do
  local old = redis.call('RPOP', KEYS[3])
  if not old then
    break
  end
  if not redis.call('ZSCORE', KEYS[1], old) then
    local arrival = redis.call('INCR', KEYS[4])
    redis.call('ZADD', KEYS[1], string.format('%.0f', tonumber(ARGV[2]) + arrival), old)
  end
end
local first = redis.call('ZPOPMIN', KEYS[1])
if #first == 0 then
  return false
end
local id = first[1]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[1]), id)
return id
