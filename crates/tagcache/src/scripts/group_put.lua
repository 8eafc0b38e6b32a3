-- Stores one field of a hash group (group.rs). The hash gets its TTL and
-- its tag edges when it is created; later writes never extend either. A
-- hash that reached its field cap is dropped whole and started afresh.
--
-- KEYS: the group hash, its m tag index keys, the registry, the fence,
--       the bucket's announcement counter (`l1`).
-- ARGV: m, field, value, ttl ms, cap, tag section, index member (the
--       group's key), since (server µs the caller's read began, 0 =
--       unguarded), fence window µs, then the m tag names.
-- Returns 1 when the hash was created (or re-created after the cap), 0
-- when the field joined an existing hash, 2 when refused by the fence: the
-- group was deleted or refreshed (fence `k<member>`, drop.lua) or one of
-- its tags invalidated (fence `t<tag>`, snapshot.lua) at or after `since`,
-- or `since` is older than the fence window.
local m = tonumber(ARGV[1])
local group = KEYS[1]
local member = ARGV[7]
local since, window = tonumber(ARGV[8]), tonumber(ARGV[9])
if since > 0 then
  local now_micros = now_us()
  if since < now_micros - window then
    return 2
  end
  local fence = KEYS[3 + m]
  local s = redis.call('ZSCORE', fence, 'k' .. member)
  if s and tonumber(s) >= since then
    return 2
  end
  for j = 1, m do
    s = redis.call('ZSCORE', fence, 't' .. ARGV[9 + j])
    if s and tonumber(s) >= since then
      return 2
    end
  end
end
local now = now_ms()
local cap = tonumber(ARGV[5])
local exists = redis.call('EXISTS', group) == 1
-- One field of the hash is its tag section.
if exists and redis.call('HLEN', group) - 1 >= cap and redis.call('HEXISTS', group, ARGV[2]) == 0 then
  redis.call('DEL', group)
  exists = false
end
redis.call('HSET', group, ARGV[2], ARGV[3])
announce(KEYS[4 + m], 'k', {member})
if exists then
  return 0
end
local exp = now + tonumber(ARGV[4])
redis.call('HSET', group, '\0tags', ARGV[6])
redis.call('PEXPIREAT', group, int(exp))
for j = 1, m do
  trim_expired(KEYS[1 + j], now, TRIM_PER_CALL)
  redis.call('ZADD', KEYS[1 + j], int(exp), member)
  redis.call('ZADD', KEYS[2 + m], 'LT', int(exp), ARGV[9 + j])
end
return 1
