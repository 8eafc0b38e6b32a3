-- Deletes entries and every index edge they have, in one atomic step; used
-- by delete and by each invalidation chunk.
--
-- KEYS: n entry keys, m tag index keys, k registry keys, k fence keys,
--       then (when an invalidation is running) the snapshot key and the
--       in-flight key.
-- ARGV: n, m, k, invalidated tag name ('' when deleting), fence window µs;
--       m tag names; m registry numbers; then per entry: member, registry
--       number, action (1 = drop, 0 = only leave the snapshot), expected
--       state ('0' missing, or '1' followed by the tag section read
--       before), tag count, tag numbers.
-- An entry is only touched when its state still equals the expected one;
-- otherwise it is reported as changed and the caller reads it again. A
-- delete also fences the key, so a read-through that began before cannot
-- store it again.
-- Returns {dropped, status...}: 1 dropped, 2 left alone, 3 changed.
local n, m, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tag, window = ARGV[4], tonumber(ARGV[5])
local snapshot, inflight
if tag ~= '' then
  snapshot, inflight = KEYS[n + m + 2 * k + 1], KEYS[n + m + 2 * k + 2]
end
local now = now_ms()
local now_micros = now_us()

local out, done, dropped = {0}, {}, 0
local a = 6 + 2 * m
for i = 1, n do
  local entry = KEYS[i]
  local member, reg, action, expected = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local nt = tonumber(ARGV[a + 4])
  local idx = {}
  for q = 1, nt do
    idx[q] = tonumber(ARGV[a + 4 + q])
  end
  a = a + 5 + nt

  local section = tag_section(entry)
  local state = '0'
  if section then
    state = '1' .. section
  end
  if state ~= expected then
    out[i + 1] = 3
  else
    if action == '1' and section then
      redis.call('DEL', entry)
      for _, j in ipairs(idx) do
        redis.call('ZREM', KEYS[n + j], member)
      end
      dropped = dropped + 1
      out[i + 1] = 1
    else
      out[i + 1] = 2
    end
    if not snapshot then
      try_zadd(KEYS[n + m + k + tonumber(reg)], int(now_micros), 'k' .. member)
    end
    done[#done + 1] = member
  end
end

-- Indexes emptied by this call leave the registry now rather than at the
-- next sweep; fences older than the window go.
for j = 1, m do
  if redis.call('EXISTS', KEYS[n + j]) == 0 then
    redis.call('ZREM', KEYS[n + m + tonumber(ARGV[5 + m + j])], ARGV[5 + j])
  end
end
for r = 1, k do
  trim_expired(KEYS[n + m + k + r], now_micros - window, 16)
end

if snapshot then
  zrem_all(snapshot, done)
  if redis.call('EXISTS', snapshot) == 0 then
    redis.call('ZREM', inflight, tag)
  else
    try_zadd(inflight, 'XX', int(now), tag)
  end
end
out[1] = dropped
return out
