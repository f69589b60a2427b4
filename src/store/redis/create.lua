-- Stores a new job with its TTL, indexes it for listing and search, and publishes it, unless the
-- key already exists.
-- KEYS[1] the job key (job:<uuid>), also its channel; KEYS[2] the job index (ids by creation);
-- KEYS[3] the search vocabulary (every indexed word, for prefix lookups); KEYS[4] where the
-- job's own webhook endpoint is kept, beside the job (see webhooks.lua).
-- ARGV[1] the job JSON, ARGV[2] ttl_secs, ARGV[3] created (ms since the epoch), ARGV[4] the prefix
-- of a word's key, ARGV[5] the job's webhook endpoint ('' = none), ARGV[6..] the words the job
-- is found by (see src/search.rs): each word's sorted set holds the ids of the jobs with that
-- word, scored by creation.
-- A create with an idempotency key also names KEYS[5], the key's record, and puts before the
-- words what the record holds once the job is stored (ARGV[6]) and its ttl_secs (ARGV[7]): a
-- record already there is answered instead (the caller compares it with its request), and
-- nothing is stored.
local words_from = 6
if KEYS[5] then
  local held = redis.call('GET', KEYS[5])
  if held then
    return held
  end
  words_from = 8
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
if KEYS[5] then
  redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[7])
end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[2])
end
local id = string.sub(KEYS[1], 5)
redis.call('ZADD', KEYS[2], ARGV[3], id)
for i = words_from, #ARGV do
  redis.call('ZADD', ARGV[4] .. ARGV[i], ARGV[3], id)
  redis.call('ZADD', KEYS[3], 0, ARGV[i])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
