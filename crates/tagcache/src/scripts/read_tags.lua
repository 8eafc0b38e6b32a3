-- Reads the tag sections of entries: false for a missing entry, 0 for one
-- that is not a valid tagcache entry (see `tag_section`).
-- KEYS: entry keys. ARGV: none.
local out = {}
for i = 1, #KEYS do
  local section = tag_section(KEYS[i])
  if section == MALFORMED then
    out[i] = 0
  else
    out[i] = section
  end
end
return out
