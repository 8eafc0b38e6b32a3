-- Second step of a transaction write (engine/transaction.rs) that dropped
-- tags: removes each entry from the indexes of the tags its previous value
-- had and its new value lacks, but only when the entry does not carry the
-- tag *now* (a later write may have put it back), and unfiles an index it
-- emptied, as set.lua does. Until this runs, such a member is a stale
-- edge: invalidation ignores it (drop.lua drops only entries that still
-- carry the tag), a listing may still show it.
--
-- KEYS: n entry keys, m tag index keys, k registry keys, k fence keys
--       (unused; the shared key table declares them).
-- ARGV: n, m, k, '', ''; m tag names; m registry numbers (1..k); then per
--       entry: member, tag count, tag numbers (1..m).
-- Returns the number of index members removed.
-- Cost per entry: one GETRANGE, then per tag it lost one ZREM and one
-- EXISTS. Only removes, so it runs when Redis is at maxmemory.
--
-- Runs without lib.lua (scripts/mod.rs: `alone`): it is on the path of
-- every rewrite that drops a tag another process wrote, and lib.lua's
-- helpers cost ~2.3 µs to define on every call. So it reads the entry
-- header itself (codec.rs; lib.lua's `tag_bytes` reads it the same way):
-- version 1, flags < 32, u32 big-endian section length, the section of
-- u16-length-prefixed names, then 8 bytes of fresh-until (flags bit 1)
-- and 8 of TTL (bit 2). An entry that is absent, malformed or of another
-- type carries nothing, as in lib.lua.
local byte, sub, tonumber, tostring, type = string.byte, string.sub, tonumber, tostring, type
local KEYS, ARGV, redis = KEYS, ARGV, redis

-- The set of tags the entry at `key` carries (empty when none can be read).
local function carried(key)
  local tags = {}
  local head = redis.pcall('GETRANGE', key, '0', '255')
  if type(head) ~= 'string' or #head < 6 then
    return tags
  end
  local version, flags, b1, b2, b3, b4 = byte(head, 1, 6)
  if version ~= 1 or flags >= 32 then
    return tags
  end
  local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  local need = len
  if flags % 4 >= 2 then
    need = need + 8
  end
  if flags % 8 >= 4 then
    need = need + 8
  end
  local s, p, stop = head, 7, 6 + len
  if 6 + need > #head then
    if #head < 256 or (need > 4096 and redis.call('STRLEN', key) < 6 + need) then
      return tags
    end
    s = redis.call('GETRANGE', key, '6', tostring(5 + need))
    if #s < need then
      return tags
    end
    p, stop = 1, len
  end
  while p <= stop do
    if p + 1 > stop then
      return {}
    end
    local hi, lo = byte(s, p, p + 1)
    local l = hi * 256 + lo
    if l == 0 or p + 1 + l > stop then
      return {}
    end
    tags[sub(s, p + 2, p + 1 + l)] = true
    p = p + 2 + l
  end
  return tags
end

local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
local removed = 0
local a = 6 + 2 * m
for i = 1, n do
  local member, count = ARGV[a], tonumber(ARGV[a + 1])
  local now = carried(KEYS[i])
  for q = 1, count do
    local j = tonumber(ARGV[a + 1 + q])
    local name = ARGV[5 + j]
    if not now[name] then
      removed = removed + redis.call('ZREM', KEYS[n + j], member)
      -- Also when the ZREM found nothing: the transaction may have removed
      -- the member itself (a tag this process knew it dropped) and left
      -- the emptied index for this step to unfile.
      if redis.call('EXISTS', KEYS[n + j]) == 0 then
        redis.call('ZREM', KEYS[n + m + tonumber(ARGV[5 + m + j])], name)
      end
    end
  end
  a = a + 2 + count
end
return removed
