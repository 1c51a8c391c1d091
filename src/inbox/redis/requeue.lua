-- Moves one entry (or every one, with ARGV[1] = '*') of a dead or delayed stream
-- back to the main stream, due now, with its attempts reset.
-- KEYS: stream, source stream, delayed (due times). Returns how many.
local entries
if ARGV[1] == '*' then
  entries = redis.call('XRANGE', KEYS[2], '-', '+')
else
  entries = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
end
for _, e in ipairs(entries) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  redis.call('XADD', KEYS[1], '*', 'origin', f['origin'], 'received', f['received'],
    'attempts', '0', 'body', f['body'], 'type', f['type'] or '', 'error', f['error'] or '')
  redis.call('XDEL', KEYS[2], e[1])
  redis.call('ZREM', KEYS[3], e[1])
end
return #entries
