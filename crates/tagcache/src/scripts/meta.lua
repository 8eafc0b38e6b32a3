-- Records the namespace's layout on first use and returns what is stored.
-- KEYS: meta hash. ARGV: layout version, bucket count.
-- Returns {layout version, bucket count}.
-- It reads first and writes only what is missing: at maxmemory Redis
-- refuses a script's first memory-growing write, and building a cache on
-- an existing namespace must work then (to delete, invalidate, prune).
local stored = redis.call('HMGET', KEYS[1], 'layout', 'buckets')
if stored[1] and stored[2] then
  return stored
end
redis.call('HSETNX', KEYS[1], 'layout', ARGV[1])
redis.call('HSETNX', KEYS[1], 'buckets', ARGV[2])
return redis.call('HMGET', KEYS[1], 'layout', 'buckets')
