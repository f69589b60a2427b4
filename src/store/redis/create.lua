-- Stores a new job with its TTL, indexes it for listing and search, counts it in its hour's
-- stats and publishes it, unless the key already exists.
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

-- Stats (src/stats): `created` and `created:<kind>` in the hash of the creation's hour, which
-- expires STATS_KEEP_SECS after the hour ends (src/stats/hours.rs has the same constants).
-- Counting is pcall'd: a stats key that is not a hash (written by hand) never stops a creation.
local STATS_PREFIX, STATS_KEEP_SECS = '{jobcast}:stats:', 2595600
local function count_creation(doc, created_ms)
  created_ms = tonumber(created_ms)
  if not created_ms then
    return
  end
  local hour = math.floor(created_ms / 3600000)
  local key = STATS_PREFIX .. string.format('%d', hour)
  redis.pcall('HINCRBY', key, 'created', 1)
  local cut = string.find(doc, ',"input":', 1, true)
  local ok, head = pcall(cjson.decode, string.sub(doc, 1, (cut or 1) - 1) .. '}')
  if ok and type(head) == 'table' and type(head.kind) == 'string' then
    redis.pcall('HINCRBY', key, 'created:' .. head.kind, 1)
  end
  redis.pcall('EXPIREAT', key, (hour + 1) * 3600 + STATS_KEEP_SECS)
end
-- Stats end.

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
count_creation(ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
