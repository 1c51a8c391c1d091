-- Deletes every dead entry. KEYS: dead, totals. Returns how many.
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
local bytes = 0
for _, e in ipairs(entries) do
  for i = 1, #e[2], 2 do
    if e[2][i] == 'body' then bytes = bytes + string.len(e[2][i + 1]) end
  end
end
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[2], 'events', -#entries)
redis.call('HINCRBY', KEYS[2], 'bytes', -bytes)
return #entries
