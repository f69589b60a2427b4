-- Claims the webhook deliveries due now for one attempt each: each is leased by moving its due
-- time to the end of the lease, so a claimer that dies leaves it to be claimed again then.
-- KEYS[1] the due sorted set. ARGV[1] now (ms), ARGV[2] the lease (ms), ARGV[3] how many,
-- ARGV[4] the prefix of a delivery's key. Replies {id, claim, url, body, attempts made}...
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
local claimed = {}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local fields = redis.call('HMGET', key, 'url', 'body', 'status')
  if fields[1] and fields[3] == 'pending' then
    local claim = redis.call('HINCRBY', key, 'claims', 1)
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
    local made = redis.call('LLEN', key .. ':attempts')
    for _, value in ipairs({id, claim, fields[1], fields[2], made}) do
      claimed[#claimed + 1] = value
    end
  else
    redis.call('ZREM', KEYS[1], id) -- expired, or finished
  end
end
return claimed
