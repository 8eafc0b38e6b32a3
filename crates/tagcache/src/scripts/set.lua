-- Writes a batch of entries, each with its value, expiry and tag edges, in
-- one atomic step.
--
-- KEYS: n entry keys, m tag index keys, k registry keys, k fence keys, k
--       announcement counters (`l1`, one per registry's bucket).
-- ARGV: n, m, k, trim limit (0: none), fence window µs; m tag names; m registry
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
-- Cost (one new entry with t tags): TIME, one GETRANGE, SET, t ZADDs and
-- one ZADD per registry; expired members are left to the sweep (the
-- registry files every index under its next expiry) unless a trim limit
-- is set; one INCR and one SPUBLISH per bucket written (lib.lua announce).
local n, m, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local trim, window = tonumber(ARGV[4]), tonumber(ARGV[5])
-- One clock read: fences compare µs, expiries are ms.
local now_micros = now_us()
local now = math.floor(now_micros / 1000)

local names, lookup = {}, {}
for j = 1, m do
  names[j] = ARGV[5 + j]
  lookup[ARGV[5 + m + j] .. ':' .. names[j]] = j
end

if trim > 0 then
  for j = 1, m do
    trim_expired(KEYS[n + j], now, trim)
  end
end

local function fenced(fence, since, member, new)
  if since < now_micros - window then
    return true
  end
  -- One ZMSCORE for the key's fence and every tag's.
  local members = {'k' .. member}
  for _, j in ipairs(new) do
    members[#members + 1] = 't' .. names[j]
  end
  local scores = redis.call('ZMSCORE', fence, unpack(members))
  for q = 1, #members do
    local s = scores[q]
    if s and tonumber(s) >= since then
      return true
    end
  end
  return false
end

-- Per registry number: tag number -> lowest expiry written in this batch.
local out, blocked, lowest = {}, {}, {}
-- Per registry number: the members written, announced at the end.
local written = {}
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
    -- Old tags: a rewrite with the same tag section needs no index change.
    local old, missing
    local new_section = section_of(value)
    -- One GETRANGE sized to the new entry's header, section and
    -- fresh-until field holds the whole old section of a new key or of a
    -- rewrite whose section is no longer; an absent key and an empty
    -- string both mean "no old tags" (no EXISTS).
    local section = tag_section(entry, nil, HEADER_LEN + GRACE_LEN + #new_section, true)
    -- (A malformed old entry counts as untagged: its tags cannot be read.)
    if type(section) == 'string' and section ~= '' then
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
            end
          end
        end
      end
      local exps = int(exp)
      redis.call('SET', entry, value, 'PXAT', exps)
      if grace > 0 then
        redis.call('SETRANGE', entry, HEADER_LEN + #new_section, u64be(fresh))
      end
      for _, j in ipairs(new) do
        redis.call('ZADD', KEYS[n + j], exps, member)
        if lowest[j] == nil or exp < lowest[j] then
          lowest[j] = exp
        end
      end
      local w = written[reg]
      if not w then
        w = {}
        written[reg] = w
      end
      w[#w + 1] = member
      out[i] = 1
    end
  end
end

-- The registry score stays a lower bound of each index's next expiry:
-- one ZADD LT per registry and batch, with every tag written (LT never
-- raises a score, and files a tag that was not filed).
local filings = {}
for j, exp in pairs(lowest) do
  local r = tonumber(ARGV[5 + m + j])
  local args = filings[r]
  if not args then
    args = {}
    filings[r] = args
  end
  args[#args + 1] = int(exp)
  args[#args + 1] = names[j]
end
for r, args in pairs(filings) do
  for i = 1, #args, 500 do
    redis.call('ZADD', KEYS[n + m + r], 'LT', unpack(args, i, math.min(i + 499, #args)))
  end
end
for reg, members in pairs(written) do
  announce(KEYS[n + m + 2 * k + tonumber(reg)], 'k', members, now_micros)
end
return out
