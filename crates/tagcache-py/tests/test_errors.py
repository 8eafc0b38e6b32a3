"""Bad input and failures raise clear exceptions mirroring ErrorKind."""

import pytest

import tagcache


def test_invalid_input_messages(cache):
    cases = [
        (lambda: cache.set("", 1), "invalid input: key is empty"),
        (lambda: cache.set("k", 1, tags=[""]), "invalid input: tag is empty"),
        (lambda: cache.set("k", 1, ttl=0), "invalid input: ttl must be at least 1 ms"),
        (lambda: cache.set("k", 1, ttl=-5), "invalid input: ttl must be at least 1 ms"),
        (lambda: cache.set("k" * 70000, 1), "invalid input: key is 70000 bytes"),
        (lambda: cache.set("k", 1, tags=["\0x"]), "invalid input: tags starting with byte 0 are reserved"),
        (lambda: cache.get("\0k"), "invalid input: keys starting with byte 0 are reserved"),
        (lambda: cache.set_path((), 1), "invalid input: a key path needs at least one part"),
        (lambda: cache.set_path(("a", ""), 1), "invalid input: a key path needs at least one part"),
        (lambda: cache.scope(), "invalid input: a key path needs at least one part"),
        (lambda: cache.invalidate_tag(""), "invalid input: tag is empty"),
        (lambda: list(cache.keys_with_tag("")), "invalid input: tag is empty"),
        (lambda: cache.set("k", 1, ttl=10**9), "above the maximum ttl"),
    ]
    for call, message in cases:
        with pytest.raises(tagcache.InvalidInput) as e:
            call()
            pytest.fail(f"no error for the case expecting {message!r}")
        assert message in str(e.value)
        assert e.value.kind == "invalid_input"
        assert isinstance(e.value, tagcache.Error) and isinstance(e.value, ValueError)


def test_wrong_python_types(cache):
    with pytest.raises(TypeError, match="str or bytes"):
        cache.get(1)
    with pytest.raises(TypeError, match="not a single str"):
        cache.set("k", 1, tags="abc")
    with pytest.raises(TypeError, match="cannot store a value of type object"):
        cache.set("k", object())
    with pytest.raises(TypeError, match="cannot store a value of type set"):
        cache.set("k", {"nested": {1, 2}})
    with pytest.raises(TypeError, match="timedelta"):
        cache.set("k", 1, ttl="10")
    with pytest.raises(TypeError, match="tuple or list of parts"):
        cache.set_path("org:7", 1)
    with pytest.raises(TypeError, match="path parts are str, bytes or int"):
        cache.set_path(("org", 1.5), 1)
    with pytest.raises(ValueError, match="range"):
        cache.set("k", 2**70)
    with pytest.raises(TypeError, match="pairs"):
        cache.set_many([1, 2])


def test_bad_options(redis, ns):
    with pytest.raises(TypeError, match="unexpected option \"colour\""):
        tagcache.Cache(redis.url, namespace=ns, colour="red")
    with pytest.raises(tagcache.InvalidInput, match="namespace"):
        tagcache.Cache(redis.url, namespace="bad ns")
    with pytest.raises(tagcache.InvalidInput, match="bucket count must be between 1 and 65535"):
        tagcache.Cache(redis.url, namespace=ns, buckets=70000)
    with pytest.raises(ValueError, match="eviction_check"):
        tagcache.Cache(redis.url, namespace=ns, eviction_check="maybe")
    with pytest.raises(TypeError, match="breaker setting"):
        tagcache.Cache(redis.url, namespace=ns, breaker={"fails": 1})
    with pytest.raises(ValueError, match="key_logging"):
        tagcache.Cache(redis.url, namespace=ns, key_logging="loud")
    with pytest.raises(tagcache.InvalidInput, match="legacy rules"):
        tagcache.Cache(redis.url, namespace=ns, legacy_rules="[[rule]]\npattern = 1")
    with pytest.raises(tagcache.ConfigError) as e:
        tagcache.Cache("nope://x", namespace=ns)
    assert e.value.kind == "config"


def test_layout_mismatch(redis, ns):
    tagcache.Cache(redis.url, namespace=ns, buckets=4)
    with pytest.raises(tagcache.LayoutError):
        tagcache.Cache(redis.url, namespace=ns, buckets=8)


def test_connection_refused(tmp_path, ns):
    with pytest.raises(tagcache.ConnectionError) as e:
        tagcache.Cache(f"unix://{tmp_path}/nothing.sock", namespace=ns, connect_timeout=0.5)
    assert isinstance(e.value, ConnectionError)
    assert e.value.kind == "connection"


def test_timeout(redis, ns):
    c = tagcache.Cache(redis.url, namespace=ns, response_timeout=0.2)
    redis.freeze()
    try:
        with pytest.raises(tagcache.TimeoutError) as e:
            c.set("k", 1)
        assert isinstance(e.value, TimeoutError)
        assert str(e.value).startswith("timeout")
    finally:
        redis.thaw()


def test_out_of_memory(redis, ns):
    c = tagcache.Cache(redis.url, namespace=ns)
    redis.cli("CONFIG", "SET", "maxmemory", "1")
    try:
        with pytest.raises(tagcache.OutOfMemory) as e:
            c.set("k", "x" * 1000)
        assert e.value.kind == "out_of_memory"
    finally:
        redis.cli("CONFIG", "SET", "maxmemory", "0")


def test_codec_error_for_foreign_bytes(redis, cache):
    # A key in the entry keyspace that is not in tagcache format.
    stats = cache.stats()
    assert stats["buckets"] == 1
    redis.cli("SET", f"{{{cache.namespace}.0}}:e:foreign", "not tagcache")
    with pytest.raises(tagcache.CodecError):
        cache.get("foreign")
