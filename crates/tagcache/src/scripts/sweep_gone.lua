-- Removes members of one tag index whose entry is gone: evicted under a
-- volatile-* policy, or deleted behind tagcache's back. Their scores are
-- still in the future, so the expiry trim would keep them that long. The
-- caller read the members (one page of the index) and declares their entry
-- keys; each is checked here, in the same atomic step as its removal, so a
-- member whose entry was written again meanwhile stays. Only removes (runs
-- at maxmemory). An index that no longer exists leaves the registry.
-- The call bounds its own time: it stops checking once `budget` µs have
-- passed (Redis' clock, read every 8 members; 0: no budget); the members
-- it did not reach are the caller's to send again.
-- KEYS: tag index, registry, then n entry keys. ARGV: tag name, budget µs,
-- then the n members.
-- Returns {members removed, 1 if the index is gone, members reached, µs
-- spent}.
local budget = tonumber(ARGV[2])
local start = now_us()
local gone, reached = {}, 0
for i = 3, #KEYS do
  if budget > 0 and reached > 0 and reached % 8 == 0 and now_us() - start >= budget then
    break
  end
  reached = reached + 1
  if redis.call('EXISTS', KEYS[i]) == 0 then
    gone[#gone + 1] = ARGV[i]
  end
end
local removed = 0
for i = 1, #gone, 500 do
  removed = removed + redis.call('ZREM', KEYS[1], unpack(gone, i, math.min(i + 499, #gone)))
end
local spent = now_us() - start
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {removed, 1, reached, spent}
end
return {removed, 0, reached, spent}
