-- Takes old jobs out of the search index, a few words per call: the walk goes on through the
-- vocabulary from where the last call stopped and starts again from the first word at its end.
-- KEYS[1] the vocabulary, KEYS[2] where the walk stands (the last word done; absent = start).
-- ARGV[1] the prefix of a word's key, ARGV[2] the score bound ('(<ms>': created before), ARGV[3]
-- how many words. A word no job holds any more leaves the vocabulary. Replies how many entries
-- went.
local from = redis.call('GET', KEYS[2])
local start = from and ('(' .. from) or '-'
local words = redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, ARGV[3])
local removed = 0
for _, word in ipairs(words) do
  local key = ARGV[1] .. word
  removed = removed + redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[1], word)
  end
end
if #words < tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], words[#words])
end
return removed
