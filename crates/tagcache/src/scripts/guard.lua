-- The fence of guarded stores (read-through stores) written by a write
-- transaction (engine/transaction.rs): queued in the same MULTI, after
-- their SETs and index ZADDs. A store whose read began (`since`, server
-- µs) at or before the last invalidation of one of its tags or delete of
-- its key (the bucket's fence), or longer ago than the fence window, is
-- undone: its entry is deleted and its new index members removed (an
-- index that empties leaves the registry, as set.lua does). Inside
-- the same transaction as the write, so no reader ever sees a refused
-- value. (set.lua checks before it writes; a transaction cannot make a
-- write conditional, so this checks after, before anything else runs.)
-- The old value of a refused store is gone too, which for a cache is a
-- miss; its lost edges take the write's usual second step (unlink.lua).
--
-- KEYS: per store: its bucket's fence and registry, its entry, its t new
--       tag indexes.
-- ARGV: fence window µs, store count; per store: since, member, t, then
--       its t tag names.
-- Returns the 1-based numbers of the stores undone.
-- Cost: TIME and one ZMSCORE per store; a refusal adds one DEL and t
-- ZREMs and EXISTS. Deletes only, so it runs when Redis is at maxmemory.
-- Runs without lib.lua (scripts/mod.rs: `alone`), as it is on the path of
-- every read-through store.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local undone = {}
local k, a = 1, 3
for i = 1, tonumber(ARGV[2]) do
  local fence, registry, entry = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local since, member, t = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  local refused = since < now - window
  if not refused then
    local members = {'k' .. member}
    for q = 1, t do
      members[q + 1] = 't' .. ARGV[a + 2 + q]
    end
    local scores = redis.call('ZMSCORE', fence, unpack(members))
    for q = 1, #members do
      local s = scores[q]
      if s and tonumber(s) >= since then
        refused = true
        break
      end
    end
  end
  if refused then
    redis.call('DEL', entry)
    for q = 1, t do
      local index = KEYS[k + 2 + q]
      redis.call('ZREM', index, member)
      if redis.call('EXISTS', index) == 0 then
        redis.call('ZREM', registry, ARGV[a + 2 + q])
      end
    end
    undone[#undone + 1] = i
  end
  k = k + 3 + t
  a = a + 3 + t
end
return undone
