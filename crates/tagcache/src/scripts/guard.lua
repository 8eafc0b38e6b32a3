-- The fence of guarded stores (read-through stores) written by a write
-- transaction (engine/transaction.rs): queued in the same MULTI, after
-- their SETs and index ZADDs. A store whose read began (`since`, server
-- µs) at or before the last invalidation of one of its tags or delete of
-- its key (the bucket's fence), or at or before a fence that was trimmed
-- (the fence's trim mark: such a fence can no longer be seen), is undone:
-- its entry is deleted and its new index members removed (an index that
-- empties leaves the registry, as set.lua does). Inside the same
-- transaction as the write, so no reader ever sees a refused value.
-- (set.lua checks before it writes; a transaction cannot make a write
-- conditional, so this checks after, before anything else runs.) The old
-- value of a refused store is gone too, which for a cache is a miss; its
-- lost edges take the write's usual second step (unlink.lua).
--
-- KEYS: per store: its bucket's fence and registry, its entry, its t new
--       tag indexes.
-- ARGV: store count; per store: since, member, t, then its t tag names.
-- Returns the 1-based numbers of the stores undone.
-- Cost: one ZMSCORE per store, no clock read; a refusal adds one DEL and
-- t ZREMs and EXISTS. Deletes only, so it runs when Redis is at maxmemory.
-- Runs without lib.lua (scripts/mod.rs: `alone`), as it is on the path of
-- every read-through store; these two repeat lib.lua's constants.
local FENCE_TRIMMED = '~'
local TRIMMED_BASE = 4503599627370496
local undone = {}
local k, a = 1, 2
for i = 1, tonumber(ARGV[1]) do
  local fence, registry, entry = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local since, member, t = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  local members = {FENCE_TRIMMED, 'k' .. member}
  for q = 1, t do
    members[q + 2] = 't' .. ARGV[a + 2 + q]
  end
  local scores = redis.call('ZMSCORE', fence, unpack(members))
  local refused = scores[1] and tonumber(scores[1]) - TRIMMED_BASE >= since
  for q = 2, #members do
    local s = scores[q]
    if s and tonumber(s) >= since then
      refused = true
      break
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
