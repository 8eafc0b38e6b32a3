-- The raw baseline of a fenced read-through store (edges phase,
-- `raw_rt_2_fenced`): the least an application must send to Redis 7.0 to
-- store a loaded value only when no invalidation of its tags or delete of
-- its key ran since its read began. A conditional write needs a script
-- there (no WATCH on a shared multiplexed connection), so this is one
-- script call: one ZMSCORE, then SET PX and one ZADD per tag.
--
-- KEYS: the fence, the entry, then the tag indexes.
-- ARGV: read start (fence units), member, value, ttl ms, expiry (index
--       score), then the tag names (as many as tag indexes).
-- Returns 1 when stored, 0 when refused.
local since = tonumber(ARGV[1])
local members = {'k' .. ARGV[2]}
for i = 6, #ARGV do
  members[#members + 1] = 't' .. ARGV[i]
end
for _, s in ipairs(redis.call('ZMSCORE', KEYS[1], unpack(members))) do
  if s and tonumber(s) >= since then
    return 0
  end
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[5], ARGV[2])
end
return 1
