-- Deletes a legacy key only if it still holds the value read before (a
-- stale twin of an existing entry; or, on Redis Cluster, the second step
-- of a move). KEYS: the legacy key. ARGV: SHA1 (hex) of the value read.
-- Returns 1 deleted, 0 left alone.
local value = redis.pcall('GET', KEYS[1])
if type(value) == 'string' and redis.sha1hex(value) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
