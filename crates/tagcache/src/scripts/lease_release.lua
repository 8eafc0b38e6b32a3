-- Releases a load lease if the caller still holds it (compare and delete):
-- a lease that expired and was taken by another process is left alone.
--
-- KEYS: the lease key. ARGV: the caller's token.
-- Returns 1 when released, 0 when the lease was not (or no longer) ours.
-- Cost: GET, and DEL when it matches.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
