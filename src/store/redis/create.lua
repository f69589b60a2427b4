-- Stores a new job with its TTL and publishes it, unless the key already exists.
-- KEYS[1] the job key (job:<uuid>), also its channel; ARGV[1] the job JSON, ARGV[2] ttl_secs.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('PUBLISH', KEYS[1], ARGV[1])
  return 1
end
return 0
