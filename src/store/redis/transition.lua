-- Applies one change to one job atomically: checks the transition, bumps seq, rewrites the key
-- with its TTL and publishes the new state. Mirrors the rules of src/job/change.rs.
--
-- KEYS[1]  the job key (job:<uuid>); the job's channel has the same name
-- KEYS[2]  the queue (see claim.lua), where op priority re-scores a queued job
-- KEYS[3]  the history (a sorted set of finished job ids scored by when they finished, in ms),
-- KEYS[4]  the history records (a hash: id -> the record; see src/job/history.rs)
-- ARGV     op (start|progress|complete|fail|cancel|requeue|priority), now, ttl_secs,
--          expires_at, progress (max attempts for requeue, the new priority for priority),
--          step ('' keeps the current one for progress; the new priority's band for priority),
--          payload (result JSON for complete, error text for fail, reason for cancel and requeue,
--          the arrivals per band for priority), fence ('' = none: a fenced change needs status
--          processing and that attempt), now in ms since the epoch, history ('1' keeps a record
--          of a job that becomes terminal, '0' does not)
--
-- The stored document is laid out as {<scalars>,"input":<json>,"result":<json>} with "result"
-- null until the job is terminal (see Job in src/job/mod.rs). Only the scalar part is decoded:
-- cjson would turn [] into {} and round big numbers, so the caller's JSON is copied verbatim.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return {'missing'}
end
local tail = ',"result":null}'
local cut = string.find(raw, ',"input":', 1, true)
if not cut then
  return redis.error_reply('ERR corrupt job document at ' .. KEYS[1])
end
local job = cjson.decode(string.sub(raw, 1, cut - 1) .. '}')
if job.status == 'completed' or job.status == 'failed' or job.status == 'cancelled' then
  return {'rejected', 'terminal', job.status}
end
if string.sub(raw, -#tail) ~= tail then
  return redis.error_reply('ERR corrupt job document at ' .. KEYS[1])
end
local input = string.sub(raw, cut + 9, #raw - #tail)
-- Stats: whether this change may be the job's first start (see the stats block below).
local fresh = job.status == 'pending' and job.attempt == 0

local op, now, ttl, expires_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local progress, step, payload, fence = tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
if fence and op ~= 'start' and (fence ~= job.attempt or job.status ~= 'processing') then
  return {'rejected', 'stale_attempt', tostring(fence), tostring(job.attempt)}
end

local result = 'null'
if op == 'start' then
  if job.status ~= 'pending' then
    return {'rejected', 'already_started'}
  end
  job.attempt = job.attempt + 1
  job.current_step = step
elseif op == 'progress' then
  if step == '' then
    step = job.current_step
  end
  if progress < job.progress then
    return {'rejected', 'backwards', tostring(job.progress), tostring(progress)}
  end
  if progress == job.progress and step == job.current_step and job.status == 'processing' then
    return {'unchanged', raw}
  end
  job.progress = progress
  job.current_step = step
elseif op == 'complete' then
  if job.status == 'pending' then
    return {'rejected', 'not_started'}
  end
  job.progress = 100
  job.current_step = step
  job.completed_at = now
  result = payload
elseif op == 'fail' or op == 'cancel' then
  job.error = payload
  job.completed_at = now
elseif op == 'requeue' then
  if job.status ~= 'processing' then
    return {'rejected', 'not_started'}
  end
  if job.attempt >= progress then
    op = 'fail'
    job.error = 'Interrupted: ' .. payload .. '; gave up after ' .. job.attempt .. ' attempts'
    job.completed_at = now
  else
    job.current_step = 'Interrupted (' .. payload .. '); waiting to resume'
  end
elseif op == 'priority' then
  if job.status ~= 'pending' then
    return {'rejected', 'already_started'}
  end
  -- A job stored before priorities existed has none: DEFAULT_PRIORITY in src/job/priority.rs.
  if (job.priority or 0) == progress then
    return {'unchanged', raw}
  end
  job.priority = progress
  local id = string.sub(KEYS[1], 5)
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score then
    local arrival = tonumber(score) % tonumber(payload)
    redis.call('ZADD', KEYS[2], 'XX', string.format('%.0f', tonumber(step) + arrival), id)
  end
else
  return redis.error_reply('ERR unknown op ' .. tostring(op))
end
local next_status = {
  start = 'processing', progress = 'processing', complete = 'completed', fail = 'failed',
  cancel = 'cancelled', requeue = 'pending', priority = 'pending',
}
job.status = next_status[op]
job.seq = job.seq + 1
job.updated_at = now
job.expires_at = expires_at

-- A finished job's compact record, the same fields as HistoryRecord::of in src/job/history.rs.
local function field_of(json, first, second)
  local ok, value = pcall(cjson.decode, json)
  if not ok or type(value) ~= 'table' then
    return cjson.null
  end
  value = value[first]
  if second and type(value) == 'table' then
    value = value[second]
  end
  if type(value) == 'string' then
    return value
  end
  return cjson.null
end

if ARGV[10] == '1' and job.status ~= 'pending' and job.status ~= 'processing' then
  local id = string.sub(KEYS[1], 5)
  local record = {
    job_id = id, kind = job.kind, status = job.status, created_at = job.created_at,
    finished_at = now, error = job.error or cjson.null, attempts = job.attempt,
    priority = job.priority or 0, product_name = field_of(input, 'product_name'),
    overall_risk = cjson.null,
  }
  if result ~= 'null' then
    record.overall_risk = field_of(result, 'overall_risk', 'level')
  end
  redis.call('HSET', KEYS[4], id, cjson.encode(record))
  redis.call('ZADD', KEYS[3], ARGV[9], id)
end

-- Stats (the rules of src/stats/tally.rs): counters of the hour of now (ARGV[9]) in that hour's
-- hash, which expires STATS_KEEP_SECS after the hour ends. The first start of a job (pending, no
-- attempt yet → processing) counts its queue wait; the change that ends it, its status (also by
-- kind), its duration, and a completed deep-research report's findings. Durations go into the
-- buckets of src/stats/buckets.rs (same constants, same expression). Counting is pcall'd: a
-- stats key that is not a hash (written by hand) never stops a change.
local STATS_PREFIX, STATS_KEEP_SECS = '{jobcast}:stats:', 2595600
local BUCKETS_PER_DOUBLING, MAX_BUCKET = 8, 337
-- An RFC 3339 UTC instant as the server writes it ('2026-11-29T19:33:37.123Z') in ms since the
-- epoch, by days-from-civil; nil when it is not one.
local function ms_of(instant)
  local y, m, d, hh, mm, ss, frac = string.match(tostring(instant),
    '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$')
  if not y then
    return nil
  end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local days = era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
  local millis = tonumber(string.sub(frac .. '000', 1, 3))
  return ((days * 24 + tonumber(hh)) * 60 + tonumber(mm)) * 60000 + tonumber(ss) * 1000 + millis
end
local function bucket_of(ms)
  if ms < 1 then
    return '0'
  end
  local k = 1 + math.floor(BUCKETS_PER_DOUBLING * math.log(ms) / math.log(2) + 1e-12)
  return string.format('%d', math.min(k, MAX_BUCKET))
end
local counted = {}
local now_ms = tonumber(ARGV[9])
local ends = job.status == 'completed' or job.status == 'failed' or job.status == 'cancelled'
local starts = fresh and job.status == 'processing'
-- Read only by a change that is counted: a progress report parses nothing.
local created_ms = (starts or ends) and ms_of(job.created_at)
if starts and created_ms then
  counted[#counted + 1] = 'wait:' .. bucket_of(now_ms - created_ms)
end
if ends then
  counted[#counted + 1] = 'finished:' .. job.status
  counted[#counted + 1] = 'finished:' .. job.status .. ':' .. tostring(job.kind)
  if created_ms then
    counted[#counted + 1] = 'duration:' .. bucket_of(now_ms - created_ms)
  end
  if job.status == 'completed' and job.kind == 'deep-research' then
    local ok, report = pcall(cjson.decode, result)
    if ok and type(report) == 'table' and type(report.findings) == 'table' then
      for _, finding in ipairs(report.findings) do
        if type(finding) == 'table' and type(finding.ingredient) == 'string'
            and finding.ingredient ~= '' then
          counted[#counted + 1] = 'finding:' .. finding.ingredient
        end
      end
    end
  end
end
if #counted > 0 then
  local hour = math.floor(now_ms / 3600000)
  local key = STATS_PREFIX .. string.format('%d', hour)
  for _, field in ipairs(counted) do
    redis.pcall('HINCRBY', key, field, 1)
  end
  redis.pcall('EXPIREAT', key, (hour + 1) * 3600 + STATS_KEEP_SECS)
end
-- Stats end.

local doc = string.sub(cjson.encode(job), 1, -2) .. ',"input":' .. input .. ',"result":' .. result .. '}'
redis.call('SET', KEYS[1], doc, 'EX', ttl)
redis.call('PUBLISH', KEYS[1], doc)

if ARGV[12] ~= '0' then
  local id = string.sub(KEYS[1], 5)
  local own = ARGV[11] .. 'hook:' .. id -- the job's own webhook_url, kept as long as the job
  redis.call('EXPIRE', own, ttl)
  if job.status ~= 'pending' and job.status ~= 'processing' then
    local urls = {}
    local url = redis.call('GET', own)
    if url then
      urls[1] = url
    end
    for i = 13, #ARGV do
      urls[#urls + 1] = ARGV[i]
    end
    local event = 'job.' .. job.status
    local body = '{"type":"' .. event .. '","timestamp":"' .. now .. '","data":' .. doc .. '}'
    enqueue_webhooks(ARGV[11], id, job.seq, event, body, ARGV[9], urls, ARGV[12])
  end
end
return {'ok', doc}
