-- Deletes entries and every index edge they have, in one atomic step; used
-- by delete and by each invalidation chunk. All entries are of one bucket.
--
-- The script reads each entry's current tags itself, so what it removes is
-- always exact; but it may only touch declared keys, so the caller
-- declares the tag indexes it expects (those seen in earlier chunks, or
-- those it read in the entries' headers just before: engine/remove.rs), and
-- an entry carrying a tag whose index was not declared is left untouched
-- and reported with the missing tag names, for a second call. A declared
-- index's tag is its key less the bucket's index prefix: an invalidation
-- may declare a thousand indexes a call, so each costs one key, not a
-- name and a number as well.
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
-- ARGV: n, m, 1, invalidated tag name ('' when deleting), fence window µs,
--       budget µs (0: none), the bucket's tag index key prefix (the key of
--       tag T is the prefix followed by T), then the n members.
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
local budget, prefix = tonumber(ARGV[6]), ARGV[7]
local registry, fence, l1 = KEYS[n + m + 1], KEYS[n + m + 2], KEYS[n + m + 3]
local snapshot, inflight
if tag ~= '' then
  snapshot, inflight = KEYS[n + m + 4], KEYS[n + m + 5]
end
local now_micros = now_us()

-- Declared index number by tag name (the key less the bucket's prefix:
-- one cut per declared index, rather than one concatenation per tag of
-- every entry read).
local declared = {}
local skip = #prefix
local byte, sub = string.byte, string.sub
for j = 1, m do
  declared[sub(KEYS[n + j], skip + 1)] = j
end

-- Many keys or members in one command, in slices that stay far below
-- Lua's unpack limit; answers the sum of the integer replies.
local function call_all(command, key, items)
  local step, sum = 500, 0
  for i = 1, #items, step do
    if key then
      sum = sum + redis.call(command, key, unpack(items, i, math.min(i + step - 1, #items)))
    else
      sum = sum + redis.call(command, unpack(items, i, math.min(i + step - 1, #items)))
    end
  end
  return sum
end

-- First the entries are read and judged, then everything is written: the
-- reads cannot fail (a malformed entry is a verdict, not an error), so a
-- call never stops halfway with entries deleted but still in the
-- snapshot.
local out, done, touched = {0, 0}, {}, {}
local doomed, malformed = {}, {}
local n_done, n_doomed = 0, 0
-- Members of doomed entries per tag index, removed with one ZREM each.
local edges = {}
-- The declared index of each tag of the entry being judged (reused: no
-- table is built per entry, the cost that dominated this loop).
local js = {}
local first = 7
for i = 1, n do
  -- The clock is read every 16 entries: a TIME costs about what one
  -- entry's GETRANGE does, so the checks add ~1/16 to the reading (and
  -- 16 entries take ~50 µs: the cut stays close to the budget).
  if budget > 0 and i > 1 and i % 16 == 1 and now_us() - now_micros >= budget then
    break
  end
  local entry, member = KEYS[i], ARGV[first + i]

  -- The section is parsed where it was read, and checked as it is parsed
  -- (lib.lua's valid_section rule: each tag non-empty and inside it).
  local s, p0, stop = tag_bytes(entry, member)
  local p, status, count, missing, tagged = p0, 2, 0, false, tag == ''
  while p and p <= stop do
    if p + 1 > stop then
      s = MALFORMED
      break
    end
    local hi, lo = byte(s, p, p + 1)
    local len = hi * 256 + lo
    if len == 0 or p + 1 + len > stop then
      s = MALFORMED
      break
    end
    local name = sub(s, p + 2, p + 1 + len)
    local j = declared[name]
    if j then
      count = count + 1
      js[count] = j
    else
      missing = true
    end
    if name == tag then
      tagged = true
    end
    p = p + 2 + len
  end
  if s == MALFORMED then
    -- Its tags cannot be known: it goes, with its edges in every declared
    -- index; other edges are removed by the sweep (its entry is gone) or
    -- expire.
    n_doomed = n_doomed + 1
    doomed[n_doomed] = entry
    malformed[#malformed + 1] = member
    status = 1
  elseif s then
    if missing then
      -- All its tags, so the next call can declare exactly what it needs.
      status = parse_tags(sub(s, p0, stop))
    elseif tagged then
      n_doomed = n_doomed + 1
      doomed[n_doomed] = entry
      for q = 1, count do
        local j = js[q]
        local e = edges[j]
        if not e then
          e = {}
          edges[j] = e
        end
        e[#e + 1] = member
      end
      status = 1
    end
  end
  out[i + 2] = status
  if status == 1 or status == 2 then
    n_done = n_done + 1
    done[n_done] = member
  end
end

call_all('DEL', nil, doomed)
-- L1 tiers drop what went: a delete names its keys, an invalidation its
-- tag (each L1 knows which of its entries carry it).
if n_doomed > 0 then
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
    -- Only an index that lost members can have emptied (the invalidated
    -- tag's own index is usually gone: the cut renamed it).
    if call_all('ZREM', KEYS[n + j], edges[j]) > 0 then
      touched[j] = true
    end
  end
end
for _, member in ipairs(malformed) do
  for j = 1, m do
    if redis.call('ZREM', KEYS[n + j], member) == 1 then
      touched[j] = true
    end
  end
end
if not snapshot and n_done > 0 then
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
    local j = declared[tag]
    if j then
      touched[j] = true
    end
  else
    try_zadd(inflight, 'XX', int(now_ms()), tag)
  end
end

-- Indexes emptied by this call leave the registry now rather than at the
-- next sweep; fences older than the window go. Emptied indexes are few (an
-- index empties once), so they are found by halving: one EXISTS over all
-- touched indexes (slices of 500), and only a part that lost some is
-- split and counted again.
local function unfile(keys, i, j, gone)
  if gone == 0 then
    return
  end
  if gone == j - i + 1 then
    for q = i, j do
      redis.call('ZREM', registry, sub(keys[q], skip + 1))
    end
    return
  end
  local mid = math.floor((i + j) / 2)
  local left = mid - i + 1 - redis.call('EXISTS', unpack(keys, i, mid))
  unfile(keys, i, mid, left)
  unfile(keys, mid + 1, j, gone - left)
end
local all = {}
for j in pairs(touched) do
  all[#all + 1] = KEYS[n + j]
end
for i = 1, #all, 500 do
  local last = math.min(i + 499, #all)
  unfile(all, i, last, last - i + 1 - redis.call('EXISTS', unpack(all, i, last)))
end
trim_fence(fence, now_micros - window, TRIM_PER_CALL)
out[1] = n_doomed
out[2] = now_us() - now_micros
return out
