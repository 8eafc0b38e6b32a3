-- The L1's counter check on Redis Cluster (l1/cluster_listener.rs): reads
-- the bucket's announcement counter and publishes a marker on the bucket's
-- own shard channel in one atomic step. Nothing is published between the
-- two, so every announcement the subscriber receives before the marker is
-- numbered at or below the answer, every one after it above.
-- KEYS[1] = {<ns>.<b>}:l1 (counter and channel); ARGV[1] = the marker.
local v = redis.call('GET', KEYS[1])
redis.call('SPUBLISH', KEYS[1], ARGV[1])
return v
