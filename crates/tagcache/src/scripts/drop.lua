-- Deletes entries and every index edge they have, in one atomic step; used
-- by delete and by each invalidation chunk.
--
-- The script reads each entry's current tags itself, so what it removes is
-- always exact; but it may only touch declared keys, so the caller
-- declares the tag indexes it expects (those seen in earlier chunks), and
-- an entry carrying a tag whose index was not declared is left untouched
-- and reported with the missing tag names, for a second call.
--
-- KEYS: n entry keys, m tag index keys, k registry keys, k fence keys,
--       then (when an invalidation is running) the snapshot key and the
--       in-flight key.
-- ARGV: n, m, k, invalidated tag name ('' when deleting), fence window µs;
--       m tag names; m registry numbers; then per entry: member, registry
--       number.
-- An invalidation drops only entries still carrying its tag (one rewritten
-- without it after the cut survives); every processed member leaves the
-- snapshot. A delete also fences each key, so a read-through that began
-- before cannot store it again.
-- Returns {dropped, status...}: 1 dropped, 2 absent or left alone, or,
-- when one of the entry's tag indexes was not declared, all its tags.
local n, m, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tag, window = ARGV[4], tonumber(ARGV[5])
local snapshot, inflight
if tag ~= '' then
  snapshot, inflight = KEYS[n + m + 2 * k + 1], KEYS[n + m + 2 * k + 2]
end
local now_micros = now_us()

local lookup = {}
for j = 1, m do
  lookup[ARGV[5 + m + j] .. ':' .. ARGV[5 + j]] = j
end

local out, done, dropped, touched = {0}, {}, 0, {}
local a = 6 + 2 * m
for i = 1, n do
  local entry = KEYS[i]
  local member, reg = ARGV[a], ARGV[a + 1]
  a = a + 2

  local section = tag_section(entry, member)
  if not section then
    out[i + 1] = 2
    done[#done + 1] = member
  else
    local tags = parse_tags(section)
    local idx, missing, tagged = {}, nil, tag == ''
    for q, name in ipairs(tags) do
      local j = lookup[reg .. ':' .. name]
      if j then
        idx[q] = j
      else
        missing = missing or {}
        missing[#missing + 1] = name
      end
      if name == tag then
        tagged = true
      end
    end
    if missing then
      -- All its tags, so the next call can declare exactly what it needs.
      out[i + 1] = tags
    elseif tagged then
      redis.call('DEL', entry)
      for _, j in ipairs(idx) do
        redis.call('ZREM', KEYS[n + j], member)
        touched[j] = true
      end
      dropped = dropped + 1
      out[i + 1] = 1
      done[#done + 1] = member
    else
      out[i + 1] = 2
      done[#done + 1] = member
    end
  end
  if not snapshot and type(out[i + 1]) == 'number' then
    try_zadd(KEYS[n + m + k + tonumber(reg)], int(now_micros), 'k' .. member)
  end
end

-- Indexes emptied by this call leave the registry now rather than at the
-- next sweep; fences older than the window go.
for j in pairs(touched) do
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
    try_zadd(inflight, 'XX', int(now_ms()), tag)
  end
end
out[1] = dropped
return out
