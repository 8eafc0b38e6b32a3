"""The fail-safe view with the server killed: no exceptions for an
unavailable Redis; removals are journaled and replayed."""

import asyncio
import time

import pytest

import tagcache


def test_fail_safe_with_redis_up(cache):
    fs = cache.fail_safe()
    assert fs.set("k", {"a": 1}, tags=["t"]) is True
    assert fs.get("k") == {"a": 1}
    assert fs.lookup("k") == ("hit", {"a": 1}, None)
    assert fs.lookup("zz") == ("miss", None, None)
    assert fs.set("raw", b"\x01") is True and fs.get("raw") == b"\x01"
    assert fs.invalidate_tag("t") == 1
    assert fs.delete("raw") == 1
    assert fs.get_or_compute("c", lambda: 3, return_source=True) == (3, "loaded")
    assert fs.invalidate_tags(["x"]) == 0
    assert fs.clear() == 1
    assert fs.pending() == 0
    with pytest.raises(tagcache.InvalidInput):
        fs.set("", 1)


def test_fail_safe_with_redis_killed(redis, ns):
    cache = tagcache.Cache(redis.url, namespace=ns, response_timeout=0.2, connect_timeout=0.2)
    cache.set("k", "v", tags=["t"])
    fs = cache.fail_safe(timeout=0.3)
    redis.kill()
    started = time.monotonic()
    assert fs.get("k") is None
    status, value, reason = fs.lookup("k")
    assert (status, value) == ("bypassed", None) and reason
    assert fs.set("k", "new") is False
    assert fs.get_or_compute("k", lambda: "computed", return_source=True) == ("computed", "loaded_not_stored")
    assert fs.delete("k") is None
    assert fs.invalidate_tag("t") is None
    assert fs.pending() >= 1
    assert time.monotonic() - started < 5
    with pytest.raises((tagcache.ConnectionError, tagcache.CircuitOpen, tagcache.TimeoutError)):
        cache.get("k")
    # Redis back (empty): the journal is replayed.
    redis.restart()
    deadline = time.monotonic() + 10
    while fs.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fs.pending() == 0


def test_async_fail_safe_with_redis_killed(redis, ns):
    async def main():
        cache = await tagcache.AsyncCache.connect(redis.url, namespace=ns, response_timeout=0.2,
                                                  connect_timeout=0.2)
        await cache.set("k", 1, tags=["t"])
        fs = cache.fail_safe(timeout=0.3)
        assert await fs.get("k") == 1
        redis.kill()
        assert await fs.get("k") is None
        assert (await fs.lookup("k"))[0] == "bypassed"
        assert await fs.set("k", 2) is False
        assert await fs.delete("k") is None
        assert await fs.invalidate_tags(["t"]) is None
        assert await fs.clear() is None

        async def load():
            return "fresh"

        assert await fs.get_or_compute("k", load) == "fresh"
        assert fs.pending() >= 1

    asyncio.run(main())
