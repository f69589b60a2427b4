-- Writes back a job that this instance changed or kept while Redis was away. Per job the higher
-- seq wins: a stored state with the same or a higher seq is kept.
-- KEYS[1] the job key (also its channel); ARGV[1] the job JSON, ARGV[2] its seq,
-- ARGV[3] the time it has left to live, in ms.
-- Returns 0 when Redis already had it, 1 when a newer state was written, 2 when the key was
-- missing (expired, evicted or flushed) and has been restored.
local current = redis.call('GET', KEYS[1])
if current then
  local cut = string.find(current, ',"input":', 1, true)
  local stored = cut and cjson.decode(string.sub(current, 1, cut - 1) .. '}')
  if stored and stored.seq >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('PUBLISH', KEYS[1], ARGV[1])
if current then
  return 1
end
return 2
