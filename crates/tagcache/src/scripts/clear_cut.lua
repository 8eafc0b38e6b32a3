-- Starts (or joins) a namespace clear in one bucket: the bucket's registry
-- of indexes is renamed to the clear's registry in O(1), so every index
-- that held an entry before this moment is listed there (registry
-- invariant), and the clear is filed as in flight (heartbeat), so a crashed
-- clear is finished by the next one or by the sweep.
-- KEYS: registry, clear registry, in-flight, the bucket's announcement
-- counter (L1 tiers drop the bucket at once: everything in it goes).
-- ARGV: the clear's in-flight member.
-- Returns {'join', size} (a clear registry exists: work through it
-- first), {'new', size} (cut now) or {'empty', 0} (no index to clear);
-- size: the indexes the clear registry lists.
local now = now_ms()
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[3], int(now), ARGV[1])
  return {'join', redis.call('ZCARD', KEYS[2])}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'empty', 0}
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('ZADD', KEYS[3], int(now), ARGV[1])
announce(KEYS[4], 'c', {})
return {'new', redis.call('ZCARD', KEYS[2])}
