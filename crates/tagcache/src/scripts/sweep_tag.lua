-- Trims expired members of one tag index (bounded) and files the index in
-- the registry under its new next expiry, or removes it when empty.
-- KEYS: tag index, registry. ARGV: tag name, limit.
-- Returns {removed members, 1 if the index is gone}.
-- Runs at maxmemory (allow-oom, scripts/mod.rs): re-filing an index whose
-- trim removed nothing is the script's first write, and Redis would refuse
-- it, so the sweep would stop at the first such index.
local now = now_ms()
local removed = trim_expired(KEYS[1], now, tonumber(ARGV[2]))
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {removed, 1}
end
redis.call('ZADD', KEYS[2], first[2], ARGV[1])
return {removed, 0}
