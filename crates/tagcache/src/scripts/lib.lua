-- Shared helpers, prepended to every tagcache script but those that stand
-- alone: each gets the helpers it calls and everything that is not a
-- helper (scripts/prelude.rs).
-- Keys are only ever taken from KEYS; ARGV carries names and numbers.

-- The globals the scripts use, as locals: a global is a table lookup on
-- every use, and per-entry loops use these a dozen times an entry.
local KEYS, ARGV, redis, struct, string = KEYS, ARGV, redis, struct, string
local tonumber, tostring, type, ipairs, pairs, unpack, math, table =
  tonumber, tostring, type, ipairs, pairs, unpack, math, table

-- Server time in milliseconds: all expiry arithmetic uses Redis' clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Server time in microseconds: fences and read-through times, so a read
-- that starts right after an invalidation returned is told apart from one
-- that started before it.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Formats an integer score without exponent notation.
local function int(x)
  return string.format('%.0f', x)
end

-- An integer as 8 big-endian bytes.
local function u64be(x)
  local b = {}
  for i = 8, 1, -1 do
    b[i] = string.char(x % 256)
    x = math.floor(x / 256)
  end
  return table.concat(b)
end

-- Most expired members a script trims from one fence or index it touches
-- in passing (the sweep removes the rest): bounded work per call.
local TRIM_PER_CALL = 16

-- The entry format (codec.rs): a header of HEADER_LEN bytes (version 1,
-- flags, u32 big-endian tag-section length), the tag section, then for an
-- entry with a grace period GRACE_LEN bytes of fresh-until, for one
-- written with eager refresh TTL_LEN bytes of TTL, then the payload.
local HEADER_LEN = 6
local GRACE_LEN = 8
local TTL_LEN = 8

-- Parses an entry header from the first bytes of an entry: nil unless it
-- is version 1 with known flags, else the tag-section length and the bytes
-- after the header that the section and the fresh-until and TTL fields
-- take. (One `string.byte` for the six bytes: this runs once per entry in
-- every per-entry loop.)
local function parse_header(head)
  if #head < HEADER_LEN then
    return nil
  end
  local version, flags, a, b, c, d = string.byte(head, 1, HEADER_LEN)
  if version ~= 1 or flags >= 32 then
    -- Unknown format version or codec (flags bits 4-7 hold 0 or 1).
    return nil
  end
  local len = ((a * 256 + b) * 256 + c) * 256 + d
  local need = len
  -- Entries with a grace period carry GRACE_LEN more bytes (bit 1), and
  -- entries written with eager refresh TTL_LEN more (bit 2).
  if flags % 4 >= 2 then
    need = need + GRACE_LEN
  end
  if flags % 8 >= 4 then
    need = need + TTL_LEN
  end
  return len, need
end

-- The tag section of entry bytes built by the client (always well formed).
local function section_of(value)
  local len = parse_header(value)
  return string.sub(value, HEADER_LEN + 1, HEADER_LEN + len)
end

-- What `tag_section` answers for an entry key whose contents are not a
-- tagcache entry (a foreign writer, a truncation, another type): its tags
-- cannot be known. Never returned to Redis as is.
local MALFORMED = {}

-- Whether a tag section is well formed: u16 big-endian lengths, each tag
-- non-empty and inside the section (codec.rs checks the same).
local function valid_section(section)
  local i, n = 1, #section
  while i <= n do
    if i + 1 > n then
      return false
    end
    local len = struct.unpack('>I2', section, i)
    if len == 0 or i + 1 + len > n then
      return false
    end
    i = i + 2 + len
  end
  return true
end

-- Bytes of an entry the first GETRANGE reads: the header and, for all but
-- unusually long tag sections, the whole section, so most entries cost one
-- read while a large value is never copied.
local HEAD_READ = 256
-- Its last offset, and 0, as the strings Redis receives: a number passed
-- to redis.call is formatted with sprintf on every call, which costs
-- about a third of the GETRANGE itself in a per-entry loop.
local HEAD_LAST = tostring(HEAD_READ - 1)
local ZERO = '0'

-- Where an entry's tag section is (see codec.rs), read with one GETRANGE
-- of its first `first` bytes (default HEAD_READ; a second read only for a
-- section that does not fit): false when the entry does not exist,
-- MALFORMED when its header is not valid (or the key holds another type),
-- else a string and the first and last index of the section in it (the
-- section is not cut out of what was read: a per-entry loop parses it in
-- place). The section's own tags are NOT checked: a caller that parses
-- them in place checks each length as it goes (as `valid_section` does);
-- `tag_section` does it for the others. With `empty_is_absent`, an empty
-- string counts as no entry (saves the EXISTS that tells them apart, for
-- callers to whom both mean "no tags"). A hash group (group.rs, members
-- starting with byte 0) keeps its tag section in its field "\0tags"; pass
-- `member` when the key may be one. Only reads: callers decide before
-- they write.
local function tag_bytes(key, member, first, empty_is_absent)
  if member and string.byte(member, 1) == 0 then
    local s = redis.pcall('HGET', key, '\0tags')
    if type(s) == 'table' then
      return MALFORMED
    end
    if not s then
      if redis.call('EXISTS', key) == 0 then
        return false
      end
      return MALFORMED
    end
    return s, 1, #s
  end
  local last = HEAD_LAST
  if first then
    last = first - 1
  else
    first = HEAD_READ
  end
  local head = redis.pcall('GETRANGE', key, ZERO, last)
  if type(head) == 'table' then
    -- WRONGTYPE: a hash, list, ... where an entry string belongs.
    return MALFORMED
  end
  if #head < HEADER_LEN then
    if #head == 0 and (empty_is_absent or redis.call('EXISTS', key) == 0) then
      return false
    end
    return MALFORMED
  end
  local len, need = parse_header(head)
  if not len then
    return MALFORMED
  end
  if HEADER_LEN + need <= #head then
    return head, HEADER_LEN + 1, HEADER_LEN + len
  elseif #head < first then
    -- The whole string was read: it ends inside its tag section.
    return MALFORMED
  end
  -- A length no string could hold is refused before anything is copied.
  if need > 4096 and redis.call('STRLEN', key) < HEADER_LEN + need then
    return MALFORMED
  end
  local rest = redis.call('GETRANGE', key, HEADER_LEN, HEADER_LEN + need - 1)
  if #rest < need then
    return MALFORMED
  end
  return rest, 1, len
end

-- The tag section of an entry, as `tag_bytes` finds it, cut out and
-- checked: false when the entry does not exist, MALFORMED when it or its
-- tag section is not valid, else the section.
local function tag_section(key, member, first, empty_is_absent)
  local s, i, j = tag_bytes(key, member, first, empty_is_absent)
  if not i then
    return s
  end
  local section = s
  if i ~= 1 or j ~= #s then
    section = string.sub(s, i, j)
  end
  if not valid_section(section) then
    return MALFORMED
  end
  return section
end

-- Splits a well-formed tag section (see `tag_section`) into tag names.
local function parse_tags(section)
  local tags, i, n = {}, 1, #section
  while i <= n do
    local len = struct.unpack('>I2', section, i)
    tags[#tags + 1] = string.sub(section, i + 2, i + 1 + len)
    i = i + 2 + len
  end
  return tags
end

-- How many of a zset's lowest members score before `before` (at most
-- `limit`), and its lowest score (nil for an empty zset): what a trim
-- removes, by rank from 0.
local function due(zset, before, limit)
  local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  if first[2] == nil then
    return 0, nil
  end
  local lowest = tonumber(first[2])
  if lowest >= before then
    return 0, lowest
  end
  local c = redis.call('ZCOUNT', zset, '-inf', '(' .. int(before))
  if c > limit then
    c = limit
  end
  return c, lowest
end

-- Removes at most `limit` members whose expiry is in the past (score < now:
-- Redis itself keeps a key alive up to and including its expiry ms).
-- Returns how many were removed, and the lowest score before removing
-- (nil for an empty index).
local function trim_expired(index, now, limit)
  local c, lowest = due(index, now, limit)
  if c > 0 then
    redis.call('ZREMRANGEBYRANK', index, 0, c - 1)
  end
  return c, lowest
end

-- Writes that must not make a memory-freeing call fail: when Redis is at
-- maxmemory it refuses a script's first memory-growing write (OOM), and an
-- invalidation or delete must still work then. Returns false on an error.
local function try_zadd(key, ...)
  local r = redis.pcall('ZADD', key, ...)
  return type(r) ~= 'table' or r.err == nil
end

-- Every fence zset (scores: µs) keeps one more member once trimmed,
-- FENCE_TRIMMED, scored TRIMMED_BASE + the newest fence score a trim
-- removed: guard.lua refuses a store whose read began at or before that
-- score (a fence it needed may be gone) without reading the clock.
-- TRIMMED_BASE (2^52) puts the member above every fence, so trims never
-- reach it; µs timestamps stay below 2^52 until the year 2112, and the sum
-- stays exact in a double. guard.lua repeats both constants (it runs
-- without this file).
local FENCE_TRIMMED = '~'
local TRIMMED_BASE = 4503599627370496

-- Removes at most `limit` fence members scored before `before`, after
-- raising the trim mark past them (when that write fails, e.g. out of
-- memory without allow-oom, nothing is removed). Returns how many went.
local function trim_fence(fence, before, limit)
  local c = due(fence, before, limit)
  if c == 0 then
    return 0
  end
  local last = redis.call('ZRANGE', fence, c - 1, c - 1, 'WITHSCORES')
  if not try_zadd(fence, 'GT', int(TRIMMED_BASE + tonumber(last[2])), FENCE_TRIMMED) then
    return 0
  end
  redis.call('ZREMRANGEBYRANK', fence, 0, c - 1)
  return c
end

-- ZREM of many members, in slices that stay far below Lua's unpack limit.
local function zrem_all(index, members)
  local step = 500
  for i = 1, #members, step do
    redis.call('ZREM', index, unpack(members, i, math.min(i + step - 1, #members)))
  end
end


-- Announces a change to the in-process L1 tiers reading the bucket
-- (docs/l1.md), inside the atomic step that made it, so a change is never
-- made without its announcement: INCR the bucket's counter `l1` and
-- SPUBLISH, on the shard channel of the same name (in the bucket's slot),
-- `<kind><seq> <µs>\n` then each item as a u16 big-endian length and its
-- bytes. Kinds: 'k' these keys changed or went, 't' the entries carrying
-- these tags went, 'c' the bucket is being cleared. The sequence number
-- lets a reader see a lost message; the Redis clock (µs) measures the
-- delivery lag.
local function announce(l1, kind, items, now_micros)
  local seq = redis.call('INCR', l1)
  local parts = {kind, int(seq), ' ', int(now_micros or now_us()), '\n'}
  for _, s in ipairs(items) do
    parts[#parts + 1] = struct.pack('>I2', #s)
    parts[#parts + 1] = s
  end
  -- pcall: a user without pub/sub channel permissions (Redis 7's default
  -- for new ACL users) must still write; readers then see the counter
  -- move without a message, a gap, and drop the bucket.
  redis.pcall('SPUBLISH', l1, table.concat(parts))
end
