-- Removes at most `limit` members scored before now - age (used by the
-- sweep for fences). KEYS: a zset scored by time. ARGV: age ms, limit.
-- Returns how many were removed.
return trim_expired(KEYS[1], now_ms() - tonumber(ARGV[1]), tonumber(ARGV[2]))
