-- Records the namespace's layout on first use and returns what is stored.
-- KEYS: meta hash. ARGV: layout version, bucket count.
-- Returns {layout version, bucket count}.
redis.call('HSETNX', KEYS[1], 'layout', ARGV[1])
redis.call('HSETNX', KEYS[1], 'buckets', ARGV[2])
return redis.call('HMGET', KEYS[1], 'layout', 'buckets')
