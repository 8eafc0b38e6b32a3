"""The synchronous API, method by method."""

import datetime
import threading
import time

import pytest

import tagcache


def test_set_get_roundtrips_values(cache):
    value = {"name": "Ada", "age": 36, "score": 1.5, "ok": True, "none": None,
             "list": [1, "two", [3.0]], "blob": b"\x00\xff", "nested": {"a": {"b": []}}}
    cache.set("user:1", value)
    assert cache.get("user:1") == value
    cache.set("raw", b"\x00raw\xff")
    assert cache.get("raw") == b"\x00raw\xff"
    cache.set("ba", bytearray(b"xy"))
    assert cache.get("ba") == b"xy"
    for v in ["s", 0, -1, 2**64 - 1, -(2**63), 1.25, True, False, None, [], {}]:
        cache.set("v", v)
        assert cache.get("v") == v
    cache.set("tuple", (1, 2))
    assert cache.get("tuple") == [1, 2]
    assert cache.get("missing") is None


def test_bytes_and_str_keys_name_one_entry(cache):
    cache.set(b"k", 1)
    assert cache.get("k") == 1
    assert cache.exists(b"k") is True
    assert cache.exists("nope") is False


def test_ttl_seconds_and_timedelta(cache):
    cache.set("a", 1, ttl=30)
    assert 29 < cache.ttl("a") <= 30
    cache.set("b", 1, ttl=datetime.timedelta(minutes=2))
    assert 119 < cache.ttl("b") <= 120
    cache.set("c", 1, ttl=0.5)
    assert 0 < cache.ttl("c") <= 0.5
    assert cache.ttl("missing") is None


def test_default_ttl_option(redis, ns):
    c = tagcache.Cache(redis.url, namespace=ns, default_ttl=datetime.timedelta(seconds=42))
    c.set("k", 1)
    assert 41 < c.ttl("k") <= 42


def test_tags_listing_and_invalidation(cache):
    cache.set("p1", "one", tags=["product:1", "cat:a"])
    cache.set("p2", "two", tags=("product:2", "cat:a"))
    cache.set("p3", b"three", tags={"cat:b"})
    assert cache.tags("p1") == ["product:1", "cat:a"]
    assert cache.tags("missing") is None
    assert sorted(cache.keys_with_tag("cat:a")) == ["p1", "p2"]
    assert cache.tag_len("cat:a") == 2
    assert cache.has_tag("p1", "cat:a") and not cache.has_tag("p3", "cat:a")
    assert cache.invalidate_tag("cat:a") == 2
    assert cache.get("p1") is None and cache.get("p2") is None
    assert cache.get("p3") == b"three"
    assert cache.invalidate_tags(["cat:b", "product:1"]) == 1
    assert list(cache.keys_with_tag("cat:b")) == []


def test_keys_with_tag_pages(cache):
    cache.set_many({f"k{i}": i for i in range(250)}, tags=["many"])
    it = cache.keys_with_tag("many", page_size=16)
    assert iter(it) is it
    keys = list(it)
    assert sorted(keys) == sorted(f"k{i}" for i in range(250))
    assert next(it, "done") == "done"


def test_get_many_set_many(cache):
    cache.set_many([("a", 1), ("b", b"bee"), ("a", 3)], ttl=60, tags=["m"])
    assert cache.get_many(["a", "b", "c"]) == [3, b"bee", None]
    assert cache.get_many([]) == []
    assert sorted(cache.keys_with_tag("m")) == ["a", "b"]
    cache.set_many({"x": {"n": 1}})
    assert cache.get("x") == {"n": 1}


def test_delete(cache):
    cache.set("a", 1, tags=["t"])
    cache.set("b", 2, tags=["t"])
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert list(cache.keys_with_tag("t")) == ["b"]
    assert cache.delete_many(["b", "zz"]) == 1


def test_prune_and_stats(cache):
    cache.set("a", 1, tags=["t"])
    report = cache.prune()
    assert report["complete"] is True
    assert set(report) >= {"indexes_visited", "members_removed", "entries_removed"}
    assert cache.prune(budget=10)["complete"] in (True, False)
    stats = cache.stats()
    assert stats["layout_version"] == tagcache.LAYOUT_VERSION
    assert stats["buckets"] >= 1 and stats["redis_version"].startswith("7")
    assert stats["members"] >= 1


def test_clear(cache):
    cache.set_many({f"k{i}": i for i in range(20)})
    cache.set_path(("org", 1, "prj"), "x")
    cache.group("g", 1).set("f", 1)
    assert cache.clear() >= 22
    assert cache.get("k1") is None and cache.get_path(("org", 1, "prj")) is None


def test_paths(cache):
    cache.set_path(("org", 7, "prj", 3), {"name": "p3"}, tags=["team:x"])
    cache.set_path(["org", "7", "prj", 4], b"raw")
    cache.set_path(("org", 8), "other")
    assert cache.get_path(("org", 7, "prj", 3)) == {"name": "p3"}
    assert cache.get_path(("org", 7, "prj", 4)) == b"raw"
    # A path is a key: the escaped parts joined by ":".
    assert cache.get("org:7:prj:3") == {"name": "p3"}
    assert sorted(cache.paths_under(("org", 7))) == [("org", "7", "prj", "3"), ("org", "7", "prj", "4")]
    assert list(cache.query(("org", None, "prj", 3))) == [(("org", "7", "prj", "3"), {"name": "p3"})]
    assert list(cache.query(["org", 7, None, None], page_size=1)) == [
        (("org", "7", "prj", "3"), {"name": "p3"}), (("org", "7", "prj", "4"), b"raw")]
    with pytest.raises(tagcache.InvalidInput, match="must start with an exact part"):
        list(cache.query((None, "x")))
    with pytest.raises(TypeError, match="path pattern"):
        cache.query("org:*")
    assert cache.delete_path(("org", 7, "prj", 4)) is True
    assert cache.invalidate_prefix(("org",)) == 2
    assert list(cache.paths_under(["org"])) == []


def test_scope(cache):
    s = cache.scope("dsr", "pr-1")
    assert s.owner == ("dsr", "pr-1")
    assert cache.scope(("dsr", "pr-1")).owner == ("dsr", "pr-1")
    s.set("identity:email", "a@example.com", ttl=60)
    s.set("doc", b"%PDF", tags=["kind:doc"])
    other = cache.scope("dsr", "pr-2")
    other.set("identity:email", "b@example.com")
    assert s.get("identity:email") == "a@example.com"
    assert s.get("doc") == b"%PDF"
    assert s.contains("doc") and not s.contains("nope")
    assert 59 < s.ttl("identity:email") <= 60
    assert sorted(s.keys()) == [("dsr", "pr-1", "doc"), ("dsr", "pr-1", "identity:email")]
    assert s.delete("doc") is True
    assert s.clear() == 1
    assert other.get("identity:email") == "b@example.com"


def test_group(cache):
    g = cache.group("protected_branches", 42, default_ttl=60, tags=["project:42"])
    calls = []

    def load():
        calls.append(1)
        return True

    assert g.fetch("main", load) is True
    assert g.fetch("main", load, return_source=True) == (True, "hit")
    assert len(calls) == 1
    g.set("dev", False)
    assert g.fetch("dev", load) is False
    assert g.len() == 2
    assert 59 < g.ttl() <= 60
    assert cache.invalidate_tag("project:42") == 1
    assert g.len() == 0
    g.set("x", 1)
    assert g.clear() is True and g.ttl() is None


def test_get_or_compute(cache):
    calls = []

    def load():
        calls.append(1)
        return {"v": len(calls)}

    assert cache.get_or_compute("k", load, ttl=60, tags=["t"]) == {"v": 1}
    assert cache.get_or_compute("k", load, return_source=True) == ({"v": 1}, "hit")
    assert cache.tags("k") == ["t"]
    cache.invalidate_tag("t")
    assert cache.get_or_compute("k", load, return_source=True) == ({"v": 2}, "loaded")


def test_get_or_compute_loader_error_propagates_and_caches_nothing(cache):
    class Boom(Exception):
        pass

    def load():
        raise Boom("db down")

    with pytest.raises(Boom, match="db down"):
        cache.get_or_compute("k", load)
    assert cache.get("k") is None


def test_get_or_compute_single_flight_across_threads(cache):
    calls = []
    gate = threading.Event()

    def load():
        calls.append(1)
        gate.wait(2)
        return "v"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", load)))
               for _ in range(8)]
    for t in threads:
        t.start()
    import time
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert results == ["v"] * 8
    assert len(calls) == 1


def test_async_loader_refused_by_sync_api(cache):
    async def load():
        return 1

    with pytest.raises(TypeError, match="AsyncCache"):
        cache.get_or_compute("k", load)


def test_many_threads_share_one_cache(cache):
    errors = []

    def work(n):
        try:
            for i in range(50):
                cache.set(f"t{n}:{i}", i, tags=[f"thread:{n}"])
                assert cache.get(f"t{n}:{i}") == i
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.tag_len("thread:3") == 50


def test_gil_released_while_waiting(redis, cache):
    # A frozen Redis: the call waits on its timeout; another Python thread
    # keeps running meanwhile.
    c = tagcache.Cache(redis.url, namespace=cache.namespace, response_timeout=0.5)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    redis.freeze()
    try:
        with pytest.raises(tagcache.TimeoutError):
            c.get("k")
    finally:
        redis.thaw()
        stop.set()
        t.join()
    assert len(ticks) >= 10


def test_aio_and_sync_share_the_cache(cache):
    a = cache.aio()
    assert isinstance(a, tagcache.AsyncCache)
    assert a.sync().namespace == cache.namespace
    assert repr(cache).startswith("Cache(")


def test_all_options(redis, ns):
    c = tagcache.Cache(
        redis.url, namespace=ns, default_ttl=60, max_ttl=datetime.timedelta(days=1), buckets=4,
        connect_timeout=1, response_timeout=0.5, op_timeout=0.5, max_tags=8,
        max_value_bytes=1 << 20, chunk_size=100, trim_limit=50, compression=64,
        eviction_check="warn", auto_sweep=5, fence_window=30, journal_capacity=100,
        breaker={"failures": 3, "cooldown": 0.1, "max_cooldown": 1}, key_logging="hashed",
        lazy=False)
    assert c.circuit_state == "closed"
    c.set("k", "x" * 500, tags=[f"t{i}" for i in range(8)])
    assert c.get("k") == "x" * 500
    assert c.stats()["buckets"] == 4
    with pytest.raises(tagcache.InvalidInput, match="entry has 9 tags, the limit is 8"):
        c.set("k", 1, tags=[f"t{i}" for i in range(9)])
    with pytest.raises(tagcache.InvalidInput, match="value is"):
        c.set("big", b"x" * (2 << 20))
    lazy = tagcache.Cache(redis.url, namespace=ns, buckets=4, lazy=True, compression=False,
                          auto_sweep=False, key_logging=16)
    import time
    deadline = time.monotonic() + 5
    while True:
        try:
            assert lazy.get("k") == "x" * 500
            break
        except tagcache.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_l1_option(redis, ns):
    c = tagcache.Cache(redis.url, namespace=ns, l1={"capacity_bytes": 1 << 20, "ttl": 5,
                                                    "check_period": 0.2,
                                                    "serve_while_down": False})
    c.set("k", 1)
    deadline = time.time() + 10
    while c.get("k") != 1 and time.time() < deadline:
        time.sleep(0.01)
    assert c.get("k") == 1
    assert tagcache.Cache(redis.url, namespace=ns, l1=True).get("k") == 1
    with pytest.raises(TypeError, match="unexpected l1 setting"):
        tagcache.Cache(redis.url, namespace=ns, l1={"size": 1})
