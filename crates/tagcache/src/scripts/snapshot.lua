-- Starts (or joins) the invalidation of one tag in one bucket: the live
-- index is renamed to a snapshot in O(1), so writes that land after this
-- point build a fresh index and survive, while every entry indexed before
-- it is in the snapshot, which the caller drains in bounded chunks. The
-- tag is fenced first, so a read-through that began before cannot store
-- an entry with this tag afterwards.
--
-- KEYS: tag index, snapshot, in-flight registry, fence.
-- ARGV: tag name, fence window µs.
-- Returns 'new', 'join' (a snapshot is already being drained: drain it,
-- then call again) or 'empty'.
local now = now_ms()
local state = 'empty'
if redis.call('EXISTS', KEYS[2]) == 1 then
  state = 'join'
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  -- RENAME never needs memory, so it goes first: at maxmemory, Redis only
  -- refuses a script's first memory-growing write.
  redis.call('RENAME', KEYS[1], KEYS[2])
  state = 'new'
end
-- The fence and the in-flight record are best effort under OOM (see
-- try_zadd); invalidating must work most when memory is full.
local now_micros = now_us()
try_zadd(KEYS[4], int(now_micros), 't' .. ARGV[1])
trim_fence(KEYS[4], now_micros - tonumber(ARGV[2]), TRIM_PER_CALL)
if state == 'new' then
  try_zadd(KEYS[3], int(now), ARGV[1])
elseif state == 'join' then
  try_zadd(KEYS[3], 'NX', int(now), ARGV[1])
end
return state
