-- Writes a batch of entries, each with its value, expiry and tag edges, in
-- one atomic step.
--
-- KEYS: n entry keys, m tag index keys, k registry keys, k fence keys.
-- ARGV: n, m, k, trim limit, fence window µs; m tag names; m registry
--       numbers (1..k); then per entry: member, registry number, value,
--       ttl ms, grace ms, since (server µs the caller's read began,
--       0 = unguarded), tag count, tag numbers (1..m).
-- An entry with grace expires (in Redis and in its indexes) at
-- now + ttl + grace, and its header's fresh-until field is set to now + ttl.
-- Returns, per entry: 1 written; 2 refused by the fence (a tag of the
-- entry was invalidated, or the key deleted, at or after `since`, or
-- `since` is older than the fence window); a list of old tags that were
-- not declared (the caller retries with their index keys); 0 skipped
-- because an earlier write of the same key in this batch needs a retry.
local n, m, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local trim, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()

local names, lookup = {}, {}
for j = 1, m do
  names[j] = ARGV[5 + j]
  lookup[ARGV[5 + m + j] .. ':' .. names[j]] = j
end

-- Expired members go first, so the index stays bounded by its live members.
-- The lowest score seen before trimming also tells whether the registry
-- needs an update: it already holds a score at most that low.
local earliest = {}
for j = 1, m do
  local _, lowest_before = trim_expired(KEYS[n + j], now, trim)
  earliest[j] = lowest_before
end

local now_micros = now_us()

local function fenced(fence, since, member, new)
  if since < now_micros - window then
    return true
  end
  local s = redis.call('ZSCORE', fence, 'k' .. member)
  if s and tonumber(s) >= since then
    return true
  end
  for _, j in ipairs(new) do
    s = redis.call('ZSCORE', fence, 't' .. names[j])
    if s and tonumber(s) >= since then
      return true
    end
  end
  return false
end

local out, blocked, lowest = {}, {}, {}
local a = 6 + 2 * m
for i = 1, n do
  local entry = KEYS[i]
  local member, reg, value = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local fresh = now + tonumber(ARGV[a + 3])
  local grace = tonumber(ARGV[a + 4])
  local exp = fresh + grace
  local since = tonumber(ARGV[a + 5])
  local nt = tonumber(ARGV[a + 6])
  local new = {}
  for q = 1, nt do
    new[q] = tonumber(ARGV[a + 6 + q])
  end
  a = a + 7 + nt

  if blocked[entry] then
    out[i] = 0
  elseif since > 0 and fenced(KEYS[n + m + k + tonumber(reg)], since, member, new) then
    out[i] = 2
  else
    -- Old tags: a new entry has none (one GETRANGE), a rewrite with the
    -- same tag section needs no index change.
    local old, missing
    local section = tag_section(entry)
    -- (A malformed old entry counts as untagged: its tags cannot be read.)
    if type(section) == 'string' and section ~= '' then
      local new_section = string.sub(value, 7, 6 + struct.unpack('>I4', value, 3))
      if section ~= new_section then
        old, missing = {}, {}
        for _, name in ipairs(parse_tags(section)) do
          local j = lookup[reg .. ':' .. name]
          if j then
            old[#old + 1] = j
          else
            missing[#missing + 1] = name
          end
        end
      end
    end
    if missing and #missing > 0 then
      blocked[entry] = true
      out[i] = missing
    else
      if old then
        local keep = {}
        for _, j in ipairs(new) do
          keep[j] = true
        end
        for _, j in ipairs(old) do
          if not keep[j] then
            redis.call('ZREM', KEYS[n + j], member)
            if redis.call('EXISTS', KEYS[n + j]) == 0 then
              -- Emptied (possibly after an earlier write in this batch
              -- added to it): nothing to file unless a later write adds.
              redis.call('ZREM', KEYS[n + m + tonumber(ARGV[5 + m + j])], names[j])
              lowest[j] = nil
              earliest[j] = nil
            end
          end
        end
      end
      local exps = int(exp)
      redis.call('SET', entry, value, 'PXAT', exps)
      if grace > 0 then
        local offset = 6 + struct.unpack('>I4', value, 3)
        redis.call('SETRANGE', entry, offset, u64be(fresh))
      end
      for _, j in ipairs(new) do
        redis.call('ZADD', KEYS[n + j], exps, member)
        if lowest[j] == nil or exp < lowest[j] then
          lowest[j] = exp
        end
      end
      out[i] = 1
    end
  end
end

-- One registry update per tag and batch: the registry score stays a lower
-- bound of the index's next expiry (LT never raises it).
for j, exp in pairs(lowest) do
  if not earliest[j] or earliest[j] > exp then
    redis.call('ZADD', KEYS[n + m + tonumber(ARGV[5 + m + j])], 'LT', int(exp), names[j])
  end
end
return out
