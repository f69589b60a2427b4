-- Queues a job at its priority, behind every job of that priority already queued; a job that is
-- already queued keeps its place.
-- KEYS[1] the queue (a sorted set claimed lowest score first), KEYS[2] the arrival counter
-- ARGV[1] the job id, ARGV[2] its priority's band (Priority::band in src/job/priority.rs)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local arrival = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', tonumber(ARGV[2]) + arrival), ARGV[1])
return 1
