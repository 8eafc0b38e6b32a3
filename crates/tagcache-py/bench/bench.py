"""Python get/set through tagcache against redis-py's raw GET/SET (and a
pipelined SET + ZADD, the two commands a tagged write costs at minimum)
on the same private redis-server, as ratios.

    python bench.py [--n 20000] [--value-bytes 100]   # REDIS_URL or a private server

Build the extension with --release first (maturin develop --release, or
pip install a release wheel): a debug build measures the debug build.
"""

import argparse
import asyncio
import os
import sys
import time

import redis
import redis.asyncio

import tagcache

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from _server import redis_url  # noqa: E402


def rate(n, f):
    t = time.perf_counter()
    f()
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n, value = args.n, b"x" * args.value_bytes
    url = redis_url()
    raw = redis.Redis.from_url(url)
    cache = tagcache.Cache(url, namespace=f"bench-{os.getpid()}", auto_sweep=False, response_timeout=2)
    # Own names only: the bench never touches other data of the server.
    keys = [f"bench:{os.getpid()}:k{i}" for i in range(n)]
    ukeys = [f"bench:{os.getpid()}:u{i}" for i in range(n)]

    def raw_set():
        for k in keys:
            raw.set(k, value, px=600_000)

    def raw_set_zadd():
        for k in keys:
            p = raw.pipeline(transaction=False)
            p.set(k, value, px=600_000)
            p.zadd(f"bench:{os.getpid()}:tag", {k: 1})
            p.execute()

    def raw_get():
        for k in keys:
            raw.get(k)

    def tc_set():
        for k in keys:
            cache.set(k, value, ttl=600, tags=["bench"])

    def tc_set_untagged():
        for k in ukeys:
            cache.set(k, value, ttl=600)

    def tc_get():
        for k in keys:
            cache.get(k)

    def tc_get_typed():
        for k in keys:
            cache.get("typed")

    cache.set("typed", {"id": 42, "name": "shoe", "tags": ["blue", "red"], "price": 9.5})
    rows = []
    # Rounds alternate between the clients; each figure is its best round
    # (the machine may be shared).
    fs = [raw_set, raw_set_zadd, raw_get, tc_set, tc_set_untagged, tc_get, tc_get_typed]
    best = [0.0] * len(fs)
    for _ in range(args.rounds):
        for i, f in enumerate(fs):
            best[i] = max(best[i], rate(n, f))
    r_set, r_setz, r_get, t_set, t_set0, t_get, t_typed = best
    rows.append(("set, 1 tag", t_set, "SET", r_set))
    rows.append(("set, 1 tag", t_set, "pipelined SET + ZADD", r_setz))
    rows.append(("set, no tag", t_set0, "SET", r_set))
    rows.append(("get (bytes)", t_get, "GET", r_get))
    rows.append(("get (dict, MessagePack)", t_typed, "GET", r_get))

    async def aio():
        a = await tagcache.AsyncCache.connect(url, namespace=f"bench-{os.getpid()}", auto_sweep=False,
                                            response_timeout=2)
        ar = redis.asyncio.Redis.from_url(url)

        async def batch(f):
            t = time.perf_counter()
            for i in range(0, n, 100):
                await asyncio.gather(*[f(k) for k in keys[i:i + 100]])
            return n / (time.perf_counter() - t)

        a_set = r_aset = a_get = r_aget = 0.0
        for _ in range(args.rounds):
            a_set = max(a_set, await batch(lambda k: a.set(k, value, ttl=600, tags=["bench"])))
            r_aset = max(r_aset, await batch(lambda k: ar.set(k, value, px=600_000)))
            a_get = max(a_get, await batch(lambda k: a.get(k)))
            r_aget = max(r_aget, await batch(lambda k: ar.get(k)))
        await ar.aclose()
        return [("async set, 1 tag (100 in flight)", a_set, "async SET", r_aset),
                ("async get (100 in flight)", a_get, "async GET", r_aget)]

    rows += asyncio.run(aio())
    cache.clear()
    for i in range(0, n, 1000):
        raw.delete(*keys[i:i + 1000])
    raw.delete(f"bench:{os.getpid()}:tag")
    print(f"n = {n}, value {args.value_bytes} bytes, unix socket, one client thread, "
          f"best of {args.rounds} rounds")
    print(f"| tagcache | ops/s | redis-py | ops/s | ratio |")
    print(f"| --- | ---: | --- | ---: | ---: |")
    for name, t, rname, r in rows:
        print(f"| {name} | {t:,.0f} | {rname} | {r:,.0f} | {t / r:.2f} |")


if __name__ == "__main__":
    main()
