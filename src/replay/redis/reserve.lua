-- Reserves the key unless it is held or done, in one round trip.
-- Returns 'reserved', 'done' or 'inflight'. KEYS: key. ARGV: lease value, lease ms.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 'reserved'
end
if redis.call('GET', KEYS[1]) == 'done' then
  return 'done'
end
return 'inflight'
