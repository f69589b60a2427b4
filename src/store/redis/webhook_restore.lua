-- Writes a delivery that was queued in memory during an outage, unless Redis holds it already
-- (the same id is the same event to the same endpoint). See webhooks.lua for the keys.
-- KEYS[1] the due sorted set, KEYS[2] the delivery, KEYS[3] its attempts, KEYS[4] the job's
-- deliveries. ARGV[1] id, ARGV[2] job id, ARGV[3] url, ARGV[4] event, ARGV[5] body, ARGV[6]
-- created (ms), ARGV[7] status, ARGV[8] when the next attempt is due (ms; '' once finished),
-- ARGV[9] how long to keep it (s), ARGV[10..] its attempts as JSON. Replies 1 if written.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[2], 'job_id', ARGV[2], 'url', ARGV[3], 'event', ARGV[4], 'body', ARGV[5],
  'created_ms', ARGV[6], 'status', ARGV[7], 'claims', 0)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[2], 'next_ms', ARGV[8])
  redis.call('ZADD', KEYS[1], ARGV[8], ARGV[1])
end
for i = 10, #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[i])
end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
for i = 2, 4 do
  redis.call('EXPIRE', KEYS[i], ARGV[9])
end
return 1
