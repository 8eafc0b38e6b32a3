-- Removes at most `limit` fence members scored before now - age (the
-- sweep's fence trim). KEYS: a fence zset (scores in µs). ARGV: age µs,
-- limit. Returns {removed, µs spent (Redis' clock)}: the caller paces
-- `limit` so a call takes about its time budget.
local start = now_us()
local removed = trim_fence(KEYS[1], start - tonumber(ARGV[1]), tonumber(ARGV[2]))
local spent = 0
if removed > 0 then
  spent = now_us() - start
end
return {removed, spent}
