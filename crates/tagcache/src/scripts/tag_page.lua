-- One page of a tag index's live members, in (expiry, member) order.
-- KEYS: tag index. ARGV: page size, cursor score, cursor member (both ''
-- for the first page).
-- Returns {now, member, score, member, score, ...}; the caller drops
-- members that expired (score < now) and repeats of the cursor's score.
local now = now_ms()
local n = tonumber(ARGV[1])
local res
if ARGV[3] ~= '' then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[3])
  if s and tonumber(s) == tonumber(ARGV[2]) then
    local r = redis.call('ZRANK', KEYS[1], ARGV[3])
    res = redis.call('ZRANGE', KEYS[1], r + 1, r + n, 'WITHSCORES')
  else
    -- The cursor member left: resume at its score (repeats are filtered
    -- by the caller, so none is skipped).
    local from = math.max(tonumber(ARGV[2]), now)
    res = redis.call('ZRANGE', KEYS[1], int(from), '+inf', 'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
  end
else
  res = redis.call('ZRANGE', KEYS[1], int(now), '+inf', 'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
end
table.insert(res, 1, int(now))
return res
