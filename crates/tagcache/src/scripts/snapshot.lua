-- Starts (or joins) the invalidation of one tag in one bucket: the live
-- index is renamed to a snapshot in O(1), so writes that land after this
-- point build a fresh index and survive, while every entry indexed before
-- it is in the snapshot, which the caller drains in bounded chunks.
--
-- KEYS: tag index, snapshot, in-flight registry. ARGV: tag name.
-- Returns 'new', 'join' (a snapshot is already being drained: drain it,
-- then call again) or 'empty'.
local now = int(now_ms())
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[3], 'NX', now, ARGV[1])
  return 'join'
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'empty'
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('ZADD', KEYS[3], now, ARGV[1])
return 'new'
