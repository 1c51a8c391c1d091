-- Moves due retries back into the stream, takes over lapsed leases (XAUTOCLAIM),
-- reads new entries (XREADGROUP), and dead-letters what used its last attempt.
-- Returns {stream id, event id, received, attempt, body, content type or ''} per delivery.
-- The `XAUTOCLAIM` cursor is kept between claims (KEYS[5]): each call scans a bounded
-- part of the pending entries, and starting from the beginning every time would leave
-- lapsed entries behind recently claimed ones waiting.
-- KEYS: stream, delayed (due times), delayed entries, dead, claim cursor. ARGV: group,
-- consumer, count, lease ms, now ms, max attempts.
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local count = tonumber(ARGV[3])
local max = tonumber(ARGV[6])
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, 1000)) do
  local e = redis.call('XRANGE', KEYS[3], key, key)
  redis.call('ZREM', KEYS[2], key)
  if e[1] then
    redis.call('XADD', KEYS[1], '*', unpack(e[1][2]))
    redis.call('XDEL', KEYS[3], key)
  end
end
local out = {}
local function take(id, fields, deliveries)
  local f = {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  local origin = f['origin'] or id
  local attempt = tonumber(f['attempts'] or '0') + deliveries
  if attempt > max then
    redis.call('XADD', KEYS[4], '*', 'origin', origin, 'received', f['received'],
      'attempts', tostring(attempt - 1), 'body', f['body'], 'type', f['type'] or '',
      'error', f['error'] or 'lease ended without an answer')
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
  else
    table.insert(out, {id, origin, f['received'], tostring(attempt), f['body'], f['type'] or ''})
  end
end
local cursor = redis.call('GET', KEYS[5]) or '0-0'
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], cursor, 'COUNT', count)
redis.call('SET', KEYS[5], claimed[1])
for _, entry in ipairs(claimed[2]) do
  if type(entry) == 'table' and type(entry[2]) == 'table' then
    local info = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    local deliveries = 1
    if info[1] then deliveries = tonumber(info[1][4]) end
    take(entry[1], entry[2], deliveries)
  end
end
local remaining = count - #out
if remaining > 0 then
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', remaining,
    'STREAMS', KEYS[1], '>')
  if read then
    for _, entry in ipairs(read[1][2]) do take(entry[1], entry[2], 1) end
  end
end
return out
