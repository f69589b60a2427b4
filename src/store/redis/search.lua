-- One batch of a search: the entries of a sorted set of jobs (the job index, or the history),
-- newest first, each flagged with whether its job holds every word of the query and a word that
-- starts with its last word's prefix (when it has one); see search.rs.
-- KEYS[1] the sorted set searched, KEYS[2] a scratch key (deleted before returning), KEYS[3] the
-- vocabulary. ARGV[1] the prefix of a word's key, ARGV[2] the last word's prefix ('' = none),
-- ARGV[3] how many words the prefix may stand for, ARGV[4] and ARGV[5] the highest and lowest
-- score wanted, ARGV[6] how many entries, ARGV[7] the most candidates intersected in full,
-- ARGV[8..] the whole words.
-- Replies with {id, score, 1|0} triples. The work is bounded either way: when the rarest word
-- holds at most ARGV[7] jobs, the candidates are the intersection of the searched set with the
-- whole words (Redis walks the smallest set), so every entry returned matches or nearly; when
-- every word is common, the searched set is walked as it is, one batch, each entry checked.
local function key(word)
  return ARGV[1] .. word
end
local whole, smallest = {}, math.huge
for i = 8, #ARGV do
  whole[#whole + 1] = key(ARGV[i])
  smallest = math.min(smallest, redis.call('ZCARD', whole[#whole]))
end
local expansions, prefix_total = {}, 0
if ARGV[2] ~= '' then
  local words = redis.call('ZRANGE', KEYS[3], '[' .. ARGV[2], '[' .. ARGV[2] .. '\255',
    'BYLEX', 'LIMIT', 0, ARGV[3])
  for _, word in ipairs(words) do
    expansions[#expansions + 1] = key(word)
    prefix_total = prefix_total + redis.call('ZCARD', expansions[#expansions])
  end
  if #expansions == 0 then
    return {}
  elseif #expansions == 1 then -- a prefix of one word only is that word
    whole[#whole + 1] = expansions[1]
    smallest = math.min(smallest, prefix_total)
    expansions = {}
  end
end
if smallest == 0 then
  return {}
end

local source, check_whole, check_prefix = KEYS[1], true, #expansions > 0
local function intersect(sets)
  local call = {'ZINTERSTORE', KEYS[2], #sets + 1, KEYS[1]}
  for _, set in ipairs(sets) do
    call[#call + 1] = set
  end
  call[#call + 1] = 'WEIGHTS'
  call[#call + 1] = 1
  for _ = 1, #sets do
    call[#call + 1] = 0
  end
  redis.call(unpack(call))
end
local limit = tonumber(ARGV[7])
if #whole > 0 and smallest <= limit then
  intersect(whole)
  source, check_whole = KEYS[2], false
elseif #whole == 0 and prefix_total <= limit then
  local union = {'ZUNIONSTORE', KEYS[2], #expansions}
  for _, set in ipairs(expansions) do
    union[#union + 1] = set
  end
  redis.call(unpack(union))
  intersect({KEYS[2]})
  source, check_prefix = KEYS[2], false
end

local entries = redis.call('ZRANGE', source, ARGV[4], ARGV[5], 'BYSCORE', 'REV', 'LIMIT', 0,
  ARGV[6], 'WITHSCORES')
redis.call('DEL', KEYS[2])
local function holds_all(id)
  for _, set in ipairs(whole) do
    if not redis.call('ZSCORE', set, id) then
      return false
    end
  end
  return true
end
local function holds_prefix(id)
  for _, set in ipairs(expansions) do
    if redis.call('ZSCORE', set, id) then
      return true
    end
  end
  return false
end
local reply = {}
for i = 1, #entries, 2 do
  local id = entries[i]
  local found = (not check_whole or holds_all(id)) and (not check_prefix or holds_prefix(id))
  reply[#reply + 1] = id
  reply[#reply + 1] = entries[i + 1]
  reply[#reply + 1] = found and 1 or 0
end
return reply
