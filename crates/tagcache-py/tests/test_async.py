"""The asyncio API: the same methods as coroutines, on the running loop."""

import asyncio
import datetime

import pytest

import tagcache


def run(coro):
    return asyncio.run(coro)


def test_async_basics(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns)
        assert c.namespace == ns
        await c.set("a", {"x": [1, 2]}, ttl=60, tags=["t"])
        await c.set("b", b"raw", ttl=datetime.timedelta(seconds=60), tags=["t"])
        assert await c.get("a") == {"x": [1, 2]}
        assert await c.get("b") == b"raw"
        assert await c.get_many(["a", "b", "c"]) == [{"x": [1, 2]}, b"raw", None]
        await c.set_many({"m1": 1, "m2": 2}, tags=["m"])
        assert await c.exists("m1") is True
        assert 59 < await c.ttl("a") <= 60
        assert await c.tags("a") == ["t"]
        assert await c.tag_len("t") == 2
        assert await c.has_tag("a", "t") is True
        assert sorted([k async for k in c.keys_with_tag("t", page_size=1)]) == ["a", "b"]
        assert await c.invalidate_tag("t") == 2
        assert await c.invalidate_tags(["m"]) == 2
        await c.set("d", 1)
        assert await c.delete("d") is True
        assert await c.delete_many(["d"]) == 0
        assert (await c.prune())["complete"] is True
        assert (await c.stats())["layout_version"] == tagcache.LAYOUT_VERSION
        await c.set("e", 1)
        assert await c.clear() == 1
        assert c.sync().get("e") is None

    run(main())


def test_async_constructor_and_paths_scopes_groups(redis, ns):
    c = tagcache.AsyncCache(redis.url, namespace=ns)

    async def main():
        await c.set_path(("org", 1, "prj", 2), "p")
        assert await c.get_path(("org", 1, "prj", 2)) == "p"
        assert [p async for p in c.paths_under(("org", 1))] == [("org", "1", "prj", "2")]
        assert [p async for p in c.query(("org", None, "prj", 2))] == [(("org", "1", "prj", "2"), "p")]
        assert await c.invalidate_prefix(("org",)) == 1
        assert await c.delete_path(("org", 1, "prj", 2)) is False

        s = c.scope("dsr", "pr-1")
        await s.set("email", "a@x", ttl=30)
        assert await s.get("email") == "a@x"
        assert await s.contains("email") is True
        assert 29 < await s.ttl("email") <= 30
        assert [k async for k in s.keys()] == [("dsr", "pr-1", "email")]
        assert await s.delete("email") is True
        await s.set("x", 1)
        assert await s.clear() == 1

        g = c.group("branches", 7, tags=["project:7"])

        async def load():
            await asyncio.sleep(0.01)
            return ["main"]

        assert await g.fetch("list", load, return_source=True) == (["main"], "miss")
        assert await g.fetch("list", load, return_source=True) == (["main"], "hit")
        await g.set("other", 1)
        assert await g.len() == 2
        assert await g.ttl() > 0
        assert await g.clear() is True

    run(main())


def test_async_loader_single_flight(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns)
        calls = []

        async def load():
            calls.append(1)
            await asyncio.sleep(0.2)
            return {"v": 1}

        results = await asyncio.gather(*[c.get_or_compute("k", load, tags=["t"], return_source=True)
                                         for _ in range(20)])
        assert len(calls) == 1
        assert {r[1] for r in results} <= {"loaded", "shared"}
        assert all(r[0] == {"v": 1} for r in results)
        assert await c.get_or_compute("k", load, return_source=True) == ({"v": 1}, "hit")
        # Sync loaders work too.
        assert await c.get_or_compute("k2", lambda: 5) == 5

    run(main())


def test_async_loader_error_propagates(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns)

        async def load():
            raise KeyError("nope")

        with pytest.raises(KeyError):
            await c.get_or_compute("k", load)
        assert await c.get("k") is None

    run(main())


def test_async_errors(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns)
        with pytest.raises(tagcache.InvalidInput, match="key is empty"):
            await c.set("", 1)
        with pytest.raises(TypeError):
            await c.set("k", object())
        with pytest.raises(tagcache.InvalidInput, match="tag is empty"):
            [k async for k in c.keys_with_tag("")]
        with pytest.raises(tagcache.ConnectionError):
            await tagcache.AsyncCache.connect(redis.url + ".missing", namespace=ns)

    run(main())


def test_async_does_not_block_the_loop(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns, response_timeout=0.5)
        ticks = 0
        done = False

        async def ticker():
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        redis.freeze()
        try:
            with pytest.raises(tagcache.TimeoutError):
                await c.get("k")
        finally:
            redis.thaw()
            done = True
            await t
        assert ticks >= 10

    run(main())


def test_async_cancelled_call_does_not_break_the_loop(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns)
        redis.freeze()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.get("k"), 0.05)
        finally:
            redis.thaw()
        await c.set("k", 1)
        assert await c.get("k") == 1

    run(main())


def test_cancelled_read_through_stores_nothing(redis, ns):
    async def main():
        c = await tagcache.AsyncCache.connect(redis.url, namespace=ns)

        async def slow():
            await asyncio.sleep(0.3)
            return "late"

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.get_or_compute("k", slow), 0.05)
        await asyncio.sleep(0.5)
        assert await c.get("k") is None
        assert await c.get_or_compute("k", slow) == "late"

    run(main())
