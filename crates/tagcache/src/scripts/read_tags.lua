-- Reads the tag sections of entries (false for a missing entry).
-- KEYS: entry keys. ARGV: none.
local out = {}
for i = 1, #KEYS do
  out[i] = tag_section(KEYS[i])
end
return out
