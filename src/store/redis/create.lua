-- Stores a new job with its TTL and publishes it, unless the key already exists.
-- KEYS[1] the job key (job:<uuid>), also its channel; ARGV[1] the job JSON, ARGV[2] ttl_secs.
-- A create with an idempotency key also names KEYS[2], the key's record, ARGV[3] what the record
-- holds once the job is stored and ARGV[4] its ttl_secs: a record already there is answered
-- instead (the caller compares it with its request), and nothing is stored.
if KEYS[2] then
  local held = redis.call('GET', KEYS[2])
  if held then
    return held
  end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if KEYS[2] then
    redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
  end
  redis.call('PUBLISH', KEYS[1], ARGV[1])
  return 1
end
return 0
