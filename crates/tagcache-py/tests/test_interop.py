"""A Python service and a Rust service share one namespace: entries
written by Rust (examples/interop.rs) are read, listed and invalidated by
Python, and the other way round, typed values included."""

import os
import pathlib
import subprocess

import pytest

import tagcache

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def interop_bin():
    path = os.environ.get("TAGCACHE_INTEROP_BIN")
    if path:
        return path
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "-q", "-p", "tagcache-py", "--example", "interop"],
                   cwd=ROOT, check=True)
    return str(target / "debug" / "examples" / "interop")


def rust(bin_, mode, redis, ns):
    out = subprocess.run([bin_, mode, redis.url, ns], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_rust_and_python_share_a_namespace(interop_bin, redis, ns):
    cache = tagcache.Cache(redis.url, namespace=ns)

    # Rust writes; Python reads and lists.
    rust(interop_bin, "write", redis, ns)
    assert cache.get("rust:profile") == {
        "name": "Grace", "age": 85, "emails": ["grace@navy.example"], "score": 9.5,
        "active": True, "nickname": None, "address": {"city": "Arlington"},
    }
    assert cache.get("rust:raw") == b"\x00\x01rust"
    assert cache.get("rust:list") == [1, -2, 3]
    assert cache.get_path(("org", 7, "prj", 3)) == "pipeline-3"
    assert cache.scope("dsr", "pr-9").get("identity:email") == "x@example.com"
    assert sorted(cache.keys_with_tag("from:rust")) == ["org:7:prj:3", "rust:list", "rust:profile", "rust:raw"]
    # "rust:profile" decodes as a path: it also carries the reserved
    # prefix tag of "rust".
    assert cache.tags("rust:profile") == ["from:rust", "kind:profile", "\x00prust"]

    # Python writes; Rust reads (typed), lists and invalidates.
    opts = dict(ttl=600, tags=["from:py"])
    cache.set("py:profile", {"name": "Ada", "age": 36, "emails": ["ada@example.com"], "score": 1.5,
                             "active": False, "nickname": "countess", "address": {"city": "London"}}, **opts)
    cache.set("py:raw", b"\xffpy", **opts)
    cache.set_many({"py:counts": [1, 2, 3]}, **opts)
    cache.set_path(("org", 8, "prj", 1), "py-pipeline", **opts)
    assert "invalidated 4 entries" in rust(interop_bin, "read", redis, ns)
    assert cache.get_many(["py:profile", "py:raw", "py:counts"]) == [None, None, None]
    assert list(cache.keys_with_tag("from:py")) == []

    # A Python invalidation removes what the Rust process wrote.
    assert cache.invalidate_tag("from:rust") == 4
    assert cache.scope("dsr", "pr-9").clear() == 1
    rust(interop_bin, "gone", redis, ns)
