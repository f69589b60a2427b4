-- Stores a new job with its TTL and publishes it, unless the key already exists.
-- KEYS[1] the job key (job:<uuid>), also its channel; ARGV[1] the job JSON, ARGV[2] ttl_secs.
-- A create with an idempotency key also names KEYS[2], the key's record, ARGV[3] what the record
-- holds once the job is stored and ARGV[4] its ttl_secs: a record already there is answered
-- instead (the caller compares it with its request), and nothing is stored.
-- ARGV[5] the job's created_at in ms since the epoch: its creation is counted in that hour's
-- stats (ARGV[3] and ARGV[4] are '' without an idempotency key).

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
  count_creation(ARGV[1], ARGV[5])
  redis.call('PUBLISH', KEYS[1], ARGV[1])
  return 1
end
return 0
