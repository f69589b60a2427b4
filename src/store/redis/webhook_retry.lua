-- Makes a delivery of a job due now again (an operator's retry), whatever became of it.
-- KEYS[1] the due sorted set, KEYS[2] the delivery. ARGV[1] now (ms), ARGV[2] the delivery's
-- id, ARGV[3] the job it must belong to. Replies 1, or 0 when there is no such delivery.
if redis.call('HGET', KEYS[2], 'job_id') ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[2], 'status', 'pending', 'next_ms', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
