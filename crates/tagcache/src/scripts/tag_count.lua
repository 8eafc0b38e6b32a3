-- Live members of one tag index. KEYS: tag index. ARGV: none.
return redis.call('ZCOUNT', KEYS[1], int(now_ms()), '+inf')
