-- {pending, in flight, dead}. KEYS: stream, delayed entries, dead. ARGV: group.
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local len = redis.call('XLEN', KEYS[1])
local inflight = redis.call('XPENDING', KEYS[1], ARGV[1])[1]
return {len - inflight + redis.call('XLEN', KEYS[2]), inflight, redis.call('XLEN', KEYS[3])}
