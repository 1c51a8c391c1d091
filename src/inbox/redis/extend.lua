-- Resets the idle time of an entry this claim still holds (XCLAIM ... JUSTID leaves
-- the delivery count alone), so that no other consumer takes it over. 1 when held.
-- KEYS: stream. ARGV: group, stream id, attempt, consumer.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not p[1] or p[1][2] ~= ARGV[4] then return 0 end
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if not e[1] then return 0 end
local attempts = 0
local fields = e[1][2]
for i = 1, #fields, 2 do if fields[i] == 'attempts' then attempts = tonumber(fields[i + 1]) end end
if attempts + tonumber(p[1][4]) ~= tonumber(ARGV[3]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], 0, ARGV[2], 'JUSTID')
return 1
