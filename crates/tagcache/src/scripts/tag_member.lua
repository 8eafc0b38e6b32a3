-- Whether a key is a live member of a tag index (1 or 0).
-- KEYS: tag index. ARGV: member.
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) >= now_ms() then
  return 1
end
return 0
