-- The raw baseline of an exact rewrite that changes an entry's tags
-- (edges phase, `raw_2_change_exact`): the least an application must
-- send to Redis 7.0 to rewrite an entry another process wrote and leave
-- no stale edge, when it does not know the old tags. The old tags must be
-- read in the same atomic step as the write (a concurrent rewrite may
-- have changed them), and a conditional edit needs a script there, so
-- this is one script call: read the old tag section (one GETRANGE of the
-- entry's head, tagcache's format), SET PX, one ZADD per new tag, and a
-- ZREM from each candidate index whose tag the old entry carried. It is
-- even told which indexes to declare (the bench knows the old tags),
-- which a real writer cannot be.
--
-- KEYS: the entry, the new tags' indexes, then the candidate old tags'
--       indexes.
-- ARGV: member, value, ttl ms, expiry (index score), new tag count, then
--       the tag names of every index, in KEYS order.
-- Returns the number of stale edges removed.
local head = redis.call('GETRANGE', KEYS[1], 0, 255)
local old = {}
if #head >= 6 then
  local len = struct.unpack('>I4', head, 3)
  local i, stop = 7, math.min(6 + len, #head)
  while i + 1 <= stop do
    local n = struct.unpack('>I2', head, i)
    old[string.sub(head, i + 2, i + 1 + n)] = true
    i = i + 2 + n
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
local fresh = tonumber(ARGV[5])
local new = {}
for k = 2, fresh + 1 do
  new[ARGV[4 + k]] = true
  redis.call('ZADD', KEYS[k], ARGV[4], ARGV[1])
end
local removed = 0
for k = fresh + 2, #KEYS do
  local name = ARGV[4 + k]
  if old[name] and not new[name] then
    removed = removed + redis.call('ZREM', KEYS[k], ARGV[1])
  end
end
return removed
