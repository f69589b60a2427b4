-- Writes back a job state that the instance merged while coming back from an outage (see
-- src/job/merge.rs), if the stored document is still the one it merged with: a compare-and-set,
-- so a change another instance made meanwhile is merged in on the next try, never overwritten.
-- KEYS[1] the job key (also its channel); ARGV[1] the stored document the merge read ('' when the
-- key was missing), ARGV[2] the merged job JSON, ARGV[3] the time it has left to live, in ms.
-- ARGV[4] what the write-back adds to the stats (src/stats/tally.rs, of_write_back), counted in
-- the same step as the write, so once: a JSON array of [hash key, its EXPIREAT, field...].
-- Returns 1 when written, 0 when the stored document changed since it was read.
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', KEYS[1], ARGV[2])
local ok, tallies = pcall(cjson.decode, ARGV[4] or '[]')
if ok and type(tallies) == 'table' then
  for _, tally in ipairs(tallies) do
    for i = 3, #tally do
      redis.pcall('HINCRBY', tally[1], tally[i], 1)
    end
    redis.pcall('EXPIREAT', tally[1], tally[2])
  end
end
return 1
