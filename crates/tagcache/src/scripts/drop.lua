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
-- An entry whose bytes are not a tagcache entry (malformed, or another
-- type at its key) is deleted whatever its tags: they cannot be read.
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

-- First every entry is read and judged, then everything is written: the
-- reads cannot fail (a malformed entry is a verdict, not an error), so a
-- call never stops halfway with entries deleted but still in the
-- snapshot.
local out, done, dropped, touched = {0}, {}, 0, {}
local doomed, fenced = {}, {}
local a = 6 + 2 * m
for i = 1, n do
  local member, reg = ARGV[a], ARGV[a + 1]
  a = a + 2

  local section = tag_section(KEYS[i], member)
  if not section then
    out[i + 1] = 2
  elseif section == MALFORMED then
    -- Its tags cannot be known: it goes, with its edges in every declared
    -- index; other edges are removed by the sweep (its entry is gone) or
    -- expire.
    doomed[#doomed + 1] = {KEYS[i], member, false}
    out[i + 1] = 1
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
      doomed[#doomed + 1] = {KEYS[i], member, idx}
      out[i + 1] = 1
    else
      out[i + 1] = 2
    end
  end
  if type(out[i + 1]) == 'number' then
    done[#done + 1] = member
    fenced[#fenced + 1] = {member, reg}
  end
end

for _, d in ipairs(doomed) do
  local entry, member, idx = d[1], d[2], d[3]
  redis.call('DEL', entry)
  if idx then
    for _, j in ipairs(idx) do
      redis.call('ZREM', KEYS[n + j], member)
      touched[j] = true
    end
  else
    for j = 1, m do
      if redis.call('ZREM', KEYS[n + j], member) == 1 then
        touched[j] = true
      end
    end
  end
  dropped = dropped + 1
end
if not snapshot then
  for _, f in ipairs(fenced) do
    try_zadd(KEYS[n + m + k + tonumber(f[2])], int(now_micros), 'k' .. f[1])
  end
end

if snapshot then
  zrem_all(snapshot, done)
  if redis.call('EXISTS', snapshot) == 0 then
    redis.call('ZREM', inflight, tag)
    -- The invalidation is over: unless a write started a fresh index
    -- since the cut, the tag leaves the registry too (below).
    for j = 1, m do
      if ARGV[5 + j] == tag then
        touched[j] = true
      end
    end
  else
    try_zadd(inflight, 'XX', int(now_ms()), tag)
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
out[1] = dropped
return out
