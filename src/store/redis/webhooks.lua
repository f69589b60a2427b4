-- Queues a job's webhook deliveries in the same atomic step as the change that causes them
-- (prepended to transition.lua; see webhooks.rs for the keys). Each delivery is a hash
-- <prefix>webhook:<id>, due on the sorted set <prefix>webhooks:due and listed on the job's
-- <prefix>webhooks:job:<job id>; its id is the webhook-id of every attempt.
local function enqueue_webhooks(prefix, job_id, seq, event, body, now_ms, urls, retention)
  local due, of_job = prefix .. 'webhooks:due', prefix .. 'webhooks:job:' .. job_id
  local simple = (string.gsub(job_id, '-', ''))
  for n, url in ipairs(urls) do
    local id = 'msg_' .. simple .. '_' .. seq .. '_' .. (n - 1)
    local key = prefix .. 'webhook:' .. id
    redis.call('HSET', key, 'job_id', job_id, 'url', url, 'event', event, 'body', body,
      'created_ms', now_ms, 'status', 'pending', 'claims', 0, 'next_ms', now_ms)
    redis.call('EXPIRE', key, retention)
    redis.call('ZADD', due, now_ms, id)
    redis.call('ZADD', of_job, now_ms, id)
    redis.call('EXPIRE', of_job, retention)
  end
end
