-- Marks indexes of a namespace clear as done: removes them from the
-- clear's registry, refreshes the clear's heartbeat, and files the clear
-- as finished when nothing is left.
-- KEYS: clear registry, in-flight. ARGV: the clear's in-flight member,
-- then the tags done.
-- Returns 1 while indexes are left, 0 when the clear registry is empty.
for i = 2, #ARGV, 500 do
  redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[2], 'XX', int(now_ms()), ARGV[1])
return 1
