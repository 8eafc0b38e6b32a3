"""A privacy-request platform in the middle of its move to tagcache: each
request (dsr:<id>) keeps its parts in one owner scope, while keys in the old
formats (id-{id}-identity-{attr}, EN_-prefixed encoded objects,
dsr__{id}__retry__{n}) are still in Redis. Shows and checks:

- lazy migration: reading a part that only exists in the old format returns
  the old value and moves it (remaining TTL kept);
- listing a request in the mixed state: old and new keys, each once;
- clearing exactly one request: all its keys in both formats, nothing of
  request pr-10 when clearing pr-1.

The Python twin of crates/tagcache/examples/privacy_requests.rs. The old
code's keys are written with redis-py (pip install redis).

    python privacy_requests.py         # private redis-server unless REDIS_URL is set

Exits 1 when an outcome differs from the expected one.
"""

import os
import sys

import redis

import tagcache

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _server import redis_url  # noqa: E402

# The old formats, as an operator would keep them in a rules file.
# The same rules as examples/privacy_requests.rs on purpose: each example is
# one self-contained file and the two must show the same migration.
RULES = """
default_ttl_secs = 86400   # for old keys that had no TTL

[[rule]]
name = "identity"
pattern = "id-{id}-identity-{attr}"
scope = ["dsr", "{id}"]
part = "identity:{attr}"

[[rule]]
name = "encoded"
pattern = "EN_id-{id}-identity-{attr}"
scope = ["dsr", "{id}"]
part = "encoded:{attr}"

[[rule]]
name = "retry"
pattern = "dsr__{id}__retry__{n:digits}"
scope = ["dsr", "{id}"]
part = "retry:{n}"
tags = ["retries"]
"""

REQUESTS = ("pr-1", "pr-10")


def check(ok, what):
    if not ok:
        print(f"privacy_requests: mismatch: {what}")
        sys.exit(1)


def seed_legacy(raw):
    """The keys the old code wrote."""
    pipe = raw.pipeline(transaction=False)
    for rid in REQUESTS:
        pipe.set(f"id-{rid}-identity-email", f"{rid}@example.com", px=3_600_000)
        pipe.set(f"id-{rid}-identity-name", f"Name of {rid}", px=3_600_000)
        pipe.set(f"EN_id-{rid}-identity-ssn", b"\x00\x01encrypted")
        pipe.set(f"dsr__{rid}__retry__1", 2, px=600_000)
    pipe.execute()


def listing(cache, rid):
    return {":".join(p.replace(":", "\\:") for p in path) for path in cache.scope("dsr", rid).keys()}


def expected(rid):
    parts = ["identity:email", "identity:name", "encoded:ssn", "retry:1", "mask:secret", "result:export"]
    return {f"dsr:{rid}:" + p.replace(":", "\\:") for p in parts}


def main():
    url = redis_url()
    raw = redis.Redis.from_url(url)
    seed_legacy(raw)
    cache = tagcache.Cache(url, namespace="privacy-example", legacy_rules=RULES,
                           legacy_mode="migrate", auto_sweep=False)

    # Workers write new parts in the new layout only.
    for rid in REQUESTS:
        request = cache.scope("dsr", rid)
        request.set("mask:secret", f"mask-{rid}".encode(), ttl=3600)
        request.set("result:export", [1, 2, 3], ttl=3600)

    # Lazy migration: the old value, moved with its remaining TTL.
    pr1 = cache.scope("dsr", "pr-1")
    email = pr1.get("identity:email")
    check(email == b"pr-1@example.com", f"identity:email of pr-1 read {email!r}")
    check(not raw.exists("id-pr-1-identity-email"), "the legacy email key of pr-1 was moved")
    ttl = pr1.ttl("identity:email")
    check(3500 < ttl <= 3600, f"the moved key keeps its remaining TTL (got {ttl})")
    check(pr1.get("encoded:ssn") == b"\x00\x01encrypted", "encoded values come back byte for byte")
    print(f"lazy migration: identity:email and encoded:ssn of pr-1 moved on read (ttl {ttl:.0f} s)")

    # Listing in the mixed state: each key once, none of pr-10's.
    check(raw.exists("id-pr-1-identity-name"), "identity:name of pr-1 is still in the old format")
    listed = listing(cache, "pr-1")
    check(listed == expected("pr-1"), f"pr-1 lists {sorted(listed)}")
    print(f"pr-1 in the mixed state: {len(listed)} keys")
    check(listing(cache, "pr-10") == expected("pr-10"), "pr-10 lists its own keys")
    check(pr1.contains("retry:1"), "retry:1 is part of pr-1")

    # Clear exactly one request: everything of it, in both formats.
    removed = pr1.clear()
    check(removed == 6, f"clearing pr-1 removed {removed} keys")
    check(listing(cache, "pr-1") == set(), "pr-1 is empty after clear")
    check(pr1.get("identity:name") is None, "no old value comes back after clear")
    check(listing(cache, "pr-10") == expected("pr-10"), "pr-10 keeps all its keys")
    check(cache.scope("dsr", "pr-10").get("mask:secret") == b"mask-pr-10", "pr-10's new parts survive")
    print(f"cleared pr-1: {removed} keys; pr-10 untouched")

    removed10 = cache.scope("dsr", "pr-10").clear()
    check(removed10 == 6, f"clearing pr-10 removed {removed10}")
    print("privacy_requests: all checks passed")


if __name__ == "__main__":
    main()
