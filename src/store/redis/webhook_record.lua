-- Records an attempt of a claimed delivery and what follows it, unless a later claim superseded
-- this one (its lease ran out): then nothing is written and 0 is returned.
-- KEYS[1] the due sorted set, KEYS[2] the delivery, KEYS[3] its attempts (a list).
-- ARGV[1] the claim, ARGV[2] the attempt as JSON ('' = none: the attempt was put off),
-- ARGV[3] succeeded | failed | retry, ARGV[4] when a retry is due (ms), ARGV[5] the delivery's
-- id, ARGV[6] how long to keep it (s).
if redis.call('HGET', KEYS[2], 'claims') ~= ARGV[1] then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[2])
end
if ARGV[3] == 'retry' then
  redis.call('HSET', KEYS[2], 'next_ms', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[5])
else
  redis.call('HSET', KEYS[2], 'status', ARGV[3])
  redis.call('HDEL', KEYS[2], 'next_ms')
  redis.call('ZREM', KEYS[1], ARGV[5])
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 1
