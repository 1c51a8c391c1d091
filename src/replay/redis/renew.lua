-- Extends the lease if the key still holds it. KEYS: key. ARGV: lease value, ms.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
