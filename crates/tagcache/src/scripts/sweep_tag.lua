-- Trims expired members of one tag index (at most `limit`) and files the
-- index in the registry under its new next expiry, or removes it when
-- empty.
-- KEYS: tag index, registry. ARGV: tag name, limit.
-- Returns {removed members, 1 if the index is gone, µs spent trimming
-- (Redis' clock; 0 when nothing was removed)}: the caller paces `limit`
-- so a call takes about its time budget.
-- Runs at maxmemory (allow-oom, scripts/mod.rs): re-filing an index whose
-- trim removed nothing is the script's first write, and Redis would refuse
-- it, so the sweep would stop at the first such index.
local start = now_us()
local removed = trim_expired(KEYS[1], math.floor(start / 1000), tonumber(ARGV[2]))
local spent = 0
if removed > 0 then
  spent = now_us() - start
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {removed, 1, spent}
end
redis.call('ZADD', KEYS[2], first[2], ARGV[1])
return {removed, 0, spent}
