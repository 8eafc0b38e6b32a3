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


def test_fail_safe_keyspaces(redis, ns):
    cache = tagcache.Cache(redis.url, namespace=ns, response_timeout=0.2, connect_timeout=0.2)
    fs = cache.fail_safe(timeout=0.3)
    assert fs.set_path(("org", 1, "prj", 2), {"s": "green"}) is True
    assert fs.get_path(("org", 1, "prj", 2)) == {"s": "green"}
    assert fs.paths_under(("org", 1)) == [("org", "1", "prj", "2")]
    scope = fs.scope("dsr", "pr-1")
    assert scope.owner == ("dsr", "pr-1")
    assert scope.set("email", "a@x", ttl=60) is True
    assert scope.get("email") == "a@x"
    assert scope.lookup("email") == ("hit", "a@x", None)
    assert scope.contains("email") is True and scope.contains("nope") is False
    group = fs.group("branches", 7, tags=["project:7"])
    assert group.fetch("main", lambda: True, return_source=True) == (True, "miss")
    assert group.get("main") is True
    assert group.set("dev", False) is True

    redis.kill()
    assert fs.get_path(("org", 1, "prj", 2)) is None
    assert fs.paths_under(("org", 1)) is None
    assert fs.set_path(("org", 1, "prj", 3), 1) is False
    assert fs.invalidate_prefix(("org", 1)) is None
    assert fs.delete_path(("org", 9)) is None
    assert scope.get("email") is None
    assert scope.lookup("email")[0] == "bypassed"
    assert scope.contains("email") is None
    assert scope.set("email", "b@x") is False
    assert scope.delete("email") is None
    assert scope.clear() is None
    assert group.fetch("main", lambda: "computed", return_source=True) == ("computed", "bypassed")
    assert group.get("main") is None
    assert group.set("x", 1) is False
    assert group.clear() is None
    assert fs.pending() >= 1


def test_async_fail_safe_keyspaces(redis, ns):
    async def main():
        cache = await tagcache.AsyncCache.connect(redis.url, namespace=ns, response_timeout=0.2,
                                                  connect_timeout=0.2)
        fs = cache.fail_safe(timeout=0.3)
        assert await fs.set_path(("a", 1), "v") is True
        assert await fs.get_path(("a", 1)) == "v"
        assert await fs.paths_under(("a",)) == [("a", "1")]
        s = fs.scope("o", 1)
        assert await s.set("p", 1) is True and await s.get("p") == 1
        g = fs.group("g", 1)

        async def load():
            return "x"

        assert await g.fetch("f", load) == "x"
        redis.kill()
        assert await fs.get_path(("a", 1)) is None
        assert await s.clear() is None
        assert await g.fetch("f", load, return_source=True) == ("x", "bypassed")
        assert await fs.invalidate_prefix(("a",)) is None

    asyncio.run(main())
