-- Moves legacy keys into tagcache entries, each in one atomic step: the
-- entry is written with the legacy key's remaining TTL and indexed, and
-- the legacy key is deleted (see docs/redis-layout.md, "Legacy keys").
--
-- KEYS: n entry keys, m tag index keys, k registry keys, k fence keys
--       (unused), k announcement counters, then the n legacy keys.
-- ARGV: n, m, k, trim limit, default ttl ms (for legacy keys without
--       one); m tag names; m registry numbers; max ttl ms; then per move:
--       member, registry number, expected SHA1 of the legacy value ('' =
--       whatever it holds), entry header (header + tag section, raw codec,
--       no payload), tag count, tag numbers (1..m).
-- Returns, per move: 1 moved; 2 the entry already existed, so the legacy
-- key was a stale twin and was deleted; 0 the legacy key is gone; 3 its
-- value is no longer the expected one (left alone); 4 it is not a string
-- (left alone).
local n, m, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local trim, default_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local max_ttl = tonumber(ARGV[6 + 2 * m])
local now = now_ms()

for j = 1, m do
  trim_expired(KEYS[n + j], now, trim)
end

local out, lowest, moved = {}, {}, {}
local a = 7 + 2 * m
for i = 1, n do
  local entry, legacy = KEYS[i], KEYS[n + m + 3 * k + i]
  local member, reg, expected, header = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local nt = tonumber(ARGV[a + 4])
  local idx = {}
  for q = 1, nt do
    idx[q] = tonumber(ARGV[a + 4 + q])
  end
  a = a + 5 + nt

  local value = redis.pcall('GET', legacy)
  -- A valid entry wins over its legacy twin; a malformed one (a foreign
  -- writer, a truncation) holds nothing worth keeping and is overwritten.
  local section = tag_section(entry)
  local live = section and section ~= MALFORMED
  if type(value) == 'table' then
    out[i] = 4
  elseif not value then
    out[i] = 0
  elseif expected ~= '' and redis.sha1hex(value) ~= expected then
    out[i] = 3
  elseif live then
    -- The new key wins; its legacy twin is stale.
    redis.call('DEL', legacy)
    out[i] = 2
  else
    local ttl = redis.call('PTTL', legacy)
    if ttl == -1 then
      ttl = default_ttl
    elseif ttl < 1 then
      ttl = 1
    end
    if ttl > max_ttl then
      ttl = max_ttl
    end
    local exp = now + ttl
    redis.call('SET', entry, header .. value, 'PXAT', int(exp))
    for _, j in ipairs(idx) do
      redis.call('ZADD', KEYS[n + j], int(exp), member)
      if lowest[j] == nil or exp < lowest[j] then
        lowest[j] = exp
      end
    end
    redis.call('DEL', legacy)
    local w = moved[reg]
    if not w then
      w = {}
      moved[reg] = w
    end
    w[#w + 1] = member
    out[i] = 1
  end
end

-- The registry score stays a lower bound of each index's next expiry.
for j, exp in pairs(lowest) do
  redis.call('ZADD', KEYS[n + m + tonumber(ARGV[5 + m + j])], 'LT', int(exp), ARGV[5 + j])
end
for reg, members in pairs(moved) do
  announce(KEYS[n + m + 2 * k + tonumber(reg)], 'k', members)
end
return out
