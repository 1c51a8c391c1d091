-- Ends a claim short of an acknowledgement. Mode `retry` schedules a failed delivery
-- again, or dead-letters it after its last attempt; `release` hands it back due at
-- once without using its attempt, `defer` at the due time; `dead` dead-letters it at once. 'stale' when this
-- claim no longer holds the entry (another consumer, or a later delivery, took it over).
-- KEYS: stream, delayed (due times), delayed entries, dead. ARGV: group, stream id, attempt, max
-- attempts, due ms, reason, consumer, mode.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not p[1] or p[1][2] ~= ARGV[7] then return 'stale' end
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if not e[1] then return 'stale' end
local f = {}
local fields = e[1][2]
for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
if tonumber(f['attempts'] or '0') + tonumber(p[1][4]) ~= tonumber(ARGV[3]) then
  return 'stale'
end
local origin = f['origin'] or ARGV[2]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[8] == 'release' then
  redis.call('XADD', KEYS[1], '*', 'origin', origin, 'received', f['received'],
    'attempts', tostring(tonumber(ARGV[3]) - 1), 'body', f['body'], 'type', f['type'] or '', 'error', f['error'] or '')
  return 'released'
end
if ARGV[8] == 'defer' then
  local deferred = redis.call('XADD', KEYS[3], '*', 'origin', origin, 'received', f['received'],
    'attempts', tostring(tonumber(ARGV[3]) - 1), 'body', f['body'], 'type', f['type'] or '', 'error', f['error'] or '')
  redis.call('ZADD', KEYS[2], ARGV[5], deferred)
  return 'released'
end
if ARGV[8] == 'dead' or tonumber(ARGV[3]) >= tonumber(ARGV[4]) then
  redis.call('XADD', KEYS[4], '*', 'origin', origin, 'received', f['received'],
    'attempts', ARGV[3], 'body', f['body'], 'type', f['type'] or '', 'error', ARGV[6])
  return 'dead'
end
local delayed = redis.call('XADD', KEYS[3], '*', 'origin', origin, 'received', f['received'],
  'attempts', ARGV[3], 'body', f['body'], 'type', f['type'] or '', 'error', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], delayed)
return 'scheduled'
