-- Removes at most `limit` fence members scored before now - age (the
-- sweep's fence trim). KEYS: a fence zset (scores in µs). ARGV: age µs,
-- limit. Returns how many were removed.
return trim_expired(KEYS[1], now_us() - tonumber(ARGV[1]), tonumber(ARGV[2]))
