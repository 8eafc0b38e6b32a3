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
local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
local removed = 0
local a = 6 + 2 * m
for i = 1, n do
  local member, count = ARGV[a], tonumber(ARGV[a + 1])
  local carried = {}
  local section = tag_section(KEYS[i], nil, nil, true)
  if type(section) == 'string' then
    for _, name in ipairs(parse_tags(section)) do
      carried[name] = true
    end
  end
  for q = 1, count do
    local j = tonumber(ARGV[a + 1 + q])
    local name = ARGV[5 + j]
    if not carried[name] then
      removed = removed + redis.call('ZREM', KEYS[n + j], member)
      if redis.call('EXISTS', KEYS[n + j]) == 0 then
        redis.call('ZREM', KEYS[n + m + tonumber(ARGV[5 + m + j])], name)
      end
    end
  end
  a = a + 2 + count
end
return removed
