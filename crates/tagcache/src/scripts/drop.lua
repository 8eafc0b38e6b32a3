-- Deletes entries and every index edge they have, in one atomic step; used
-- by delete and by each invalidation chunk. All entries are of one bucket.
--
-- The script reads each entry's current tags itself, so what it removes is
-- always exact; but it may only touch declared keys, so the caller
-- declares the tag indexes it expects (those seen in earlier chunks), and
-- an entry carrying a tag whose index was not declared is left untouched
-- and reported with the missing tag names, for a second call.
--
-- The call bounds its own time, not its entry count: it stops reading
-- entries once `budget` µs have passed since it started (Redis' clock:
-- `TIME` advances during a script), then writes what it read, which costs
-- about as much again. The members it did not reach get no status; the
-- caller sends them again (an invalidation finds them still in the
-- snapshot). At least 16 entries (all, when fewer) are read per call.
--
-- KEYS: n entry keys, m tag index keys, the registry key, its fence key,
--       the bucket's announcement counter (`l1`), then (when an
--       invalidation is running) the snapshot key and the in-flight key.
-- ARGV: n, m, 1, invalidated tag name ('' when deleting), fence window µs;
--       m tag names; m registry numbers (all 1); budget µs (0: none); then
--       the n members.
-- An invalidation drops only entries still carrying its tag (one rewritten
-- without it after the cut survives); every processed member leaves the
-- snapshot. A delete also fences each key, so a read-through that began
-- before cannot store it again.
-- An entry whose bytes are not a tagcache entry (malformed, or another
-- type at its key) is deleted whatever its tags: they cannot be read.
-- Returns {dropped, µs spent (Redis clock), status...}, one status per
-- member reached (the first ones): 1 dropped, 2 absent or left alone, or,
-- when one of the entry's tag indexes was not declared, all its tags.
local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
local tag, window = ARGV[4], tonumber(ARGV[5])
local budget = tonumber(ARGV[6 + 2 * m])
local registry, fence, l1 = KEYS[n + m + 1], KEYS[n + m + 2], KEYS[n + m + 3]
local snapshot, inflight
if tag ~= '' then
  snapshot, inflight = KEYS[n + m + 4], KEYS[n + m + 5]
end
local now_micros = now_us()

local lookup = {}
for j = 1, m do
  lookup[ARGV[5 + j]] = j
end

-- Many keys or members in one command, in slices that stay far below
-- Lua's unpack limit.
local function call_all(command, key, items)
  local step = 500
  for i = 1, #items, step do
    if key then
      redis.call(command, key, unpack(items, i, math.min(i + step - 1, #items)))
    else
      redis.call(command, unpack(items, i, math.min(i + step - 1, #items)))
    end
  end
end

-- First the entries are read and judged, then everything is written: the
-- reads cannot fail (a malformed entry is a verdict, not an error), so a
-- call never stops halfway with entries deleted but still in the
-- snapshot.
local out, done, touched = {0, 0}, {}, {}
local doomed, malformed = {}, {}
-- Members of doomed entries per tag index, removed with one ZREM each.
local edges = {}
local first = 6 + 2 * m
for i = 1, n do
  -- The clock is read every 16 entries: a TIME costs about what one
  -- entry's GETRANGE does, so the checks add ~1/16 to the reading (and
  -- 16 entries take ~50 µs: the cut stays close to the budget).
  if budget > 0 and i > 1 and i % 16 == 1 and now_us() - now_micros >= budget then
    break
  end
  local entry, member = KEYS[i], ARGV[first + i]

  local section = tag_section(entry, member)
  if not section then
    out[i + 2] = 2
  elseif section == MALFORMED then
    -- Its tags cannot be known: it goes, with its edges in every declared
    -- index; other edges are removed by the sweep (its entry is gone) or
    -- expire.
    doomed[#doomed + 1] = entry
    malformed[#malformed + 1] = member
    out[i + 2] = 1
  else
    local tags = parse_tags(section)
    local idx, missing, tagged = {}, nil, tag == ''
    for q, name in ipairs(tags) do
      local j = lookup[name]
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
      out[i + 2] = tags
    elseif tagged then
      doomed[#doomed + 1] = entry
      for _, j in ipairs(idx) do
        local e = edges[j]
        if not e then
          e = {}
          edges[j] = e
        end
        e[#e + 1] = member
      end
      out[i + 2] = 1
    else
      out[i + 2] = 2
    end
  end
  if type(out[i + 2]) == 'number' then
    done[#done + 1] = member
  end
end

call_all('DEL', nil, doomed)
-- L1 tiers drop what went: a delete names its keys, an invalidation its
-- tag (each L1 knows which of its entries carry it).
if #doomed > 0 then
  if tag == '' then
    local gone = {}
    for i = 1, n do
      if out[i + 2] == 1 then
        gone[#gone + 1] = ARGV[first + i]
      end
    end
    announce(l1, 'k', gone, now_micros)
  else
    announce(l1, 't', {tag}, now_micros)
  end
end
for j = 1, m do
  if edges[j] then
    call_all('ZREM', KEYS[n + j], edges[j])
    touched[j] = true
  end
end
for _, member in ipairs(malformed) do
  for j = 1, m do
    if redis.call('ZREM', KEYS[n + j], member) == 1 then
      touched[j] = true
    end
  end
end
if not snapshot and #done > 0 then
  local score, pairs_ = int(now_micros), {}
  for _, member in ipairs(done) do
    pairs_[#pairs_ + 1] = score
    pairs_[#pairs_ + 1] = 'k' .. member
  end
  for i = 1, #pairs_, 500 do
    try_zadd(fence, unpack(pairs_, i, math.min(i + 499, #pairs_)))
  end
end

if snapshot then
  zrem_all(snapshot, done)
  if redis.call('EXISTS', snapshot) == 0 then
    redis.call('ZREM', inflight, tag)
    -- The invalidation is over: unless a write started a fresh index
    -- since the cut, the tag leaves the registry too (below).
    if lookup[tag] then
      touched[lookup[tag]] = true
    end
  else
    try_zadd(inflight, 'XX', int(now_ms()), tag)
  end
end

-- Indexes emptied by this call leave the registry now rather than at the
-- next sweep; fences older than the window go.
for j in pairs(touched) do
  if redis.call('EXISTS', KEYS[n + j]) == 0 then
    redis.call('ZREM', registry, ARGV[5 + j])
  end
end
trim_fence(fence, now_micros - window, TRIM_PER_CALL)
out[1] = #doomed
out[2] = now_us() - now_micros
return out
