-- Stores an event unless the inbox is full. Returns the stream id, or nil when full.
-- KEYS: stream, totals. ARGV: body, now, max events, max bytes, content type ('' for none).
local events = tonumber(redis.call('HGET', KEYS[2], 'events') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local len = string.len(ARGV[1])
if events >= tonumber(ARGV[3]) or bytes + len > tonumber(ARGV[4]) then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'received', ARGV[2], 'attempts', '0', 'body', ARGV[1], 'type', ARGV[5])
redis.call('HINCRBY', KEYS[2], 'events', 1)
redis.call('HINCRBY', KEYS[2], 'bytes', len)
return id
