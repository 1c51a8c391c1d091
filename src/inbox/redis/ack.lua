-- Acknowledges and deletes processed entries, so the stream holds only
-- unacknowledged work and never needs a MAXLEN trim that could drop it.
-- KEYS: stream, totals. ARGV: group, then the stream ids.
local events, bytes = 0, 0
for i = 2, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if e[1] then
    local f = e[1][2]
    for j = 1, #f, 2 do if f[j] == 'body' then bytes = bytes + string.len(f[j + 1]) end end
    redis.call('XDEL', KEYS[1], ARGV[i])
    events = events + 1
  end
end
if events > 0 then
  redis.call('HINCRBY', KEYS[2], 'events', -events)
  redis.call('HINCRBY', KEYS[2], 'bytes', -bytes)
end
return events
