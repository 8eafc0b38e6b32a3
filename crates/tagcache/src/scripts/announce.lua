-- Announces changes made outside a script (a MULTI/EXEC write): run
-- inside the same MULTI as the change, so both apply in one atomic step.
-- KEYS: the bucket's announcement counter (`{<ns>.<b>}:l1`).
-- ARGV: kind ('k' keys, 't' tags, 'c' clear), then the items.
-- Returns the announcement's sequence number.
local items = {}
for i = 2, #ARGV do
  items[#items + 1] = ARGV[i]
end
announce(KEYS[1], ARGV[1], items)
return tonumber(redis.call('GET', KEYS[1]))
