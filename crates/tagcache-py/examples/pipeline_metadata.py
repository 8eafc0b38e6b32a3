"""A data pipeline product caching metadata under hierarchical keys
(org:{o}:prj:{p}:pl:{id}), invalidated at org, project or pipeline level,
queried with wildcards, read through the fail-safe view so the cache never
breaks the app. The Python twin of crates/tagcache/examples/pipeline_metadata.rs.

    python pipeline_metadata.py        # private redis-server unless REDIS_URL is set

Exits 1 when an outcome differs from the expected one.
"""

import os
import sys

import tagcache

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _server import redis_url  # noqa: E402


def check(ok, what):
    if not ok:
        print(f"pipeline_metadata: {what}")
        sys.exit(1)


def pipeline(org, prj, pl):
    return ("org", org, "prj", prj, "pl", pl)


def main():
    cache = tagcache.Cache(redis_url(), namespace=f"pipeline-metadata-{os.getpid()}")
    for org in (7, 8):
        for prj in range(1, 4):
            for pl in range(1, 5):
                key = pipeline(org, prj, pl)
                cache.set_path(key, {"status": "green", "org": org, "prj": prj, "pl": pl}, ttl=45 * 60)
                cache.set_path(key + ("workflow",), "steps: [extract, load]", ttl=45 * 60)

    # Wildcard: pipeline 2 of org 7, whatever the project.
    found = list(cache.query(("org", 7, "prj", None, "pl", 2)))
    print(f"org:7:prj:*:pl:2 -> {len(found)} pipelines")
    check(len(found) == 3, "the wildcard query finds pipeline 2 of each project")
    check(all(v["pl"] == 2 for _, v in found), "the values come with their paths")

    # Invalidate at every level.
    one = cache.invalidate_prefix(pipeline(7, 1, 1))
    project = cache.invalidate_prefix(("org", 7, "prj", 2))
    org = cache.invalidate_prefix(("org", 7))
    print(f"invalidated: pipeline {one}, project {project}, rest of org {org} entries")
    check(one == 2, "a pipeline and its workflow")
    check(project == 8, "a project's 4 pipelines and workflows")
    check(org == 14, "the rest of org 7")
    left = list(cache.paths_under(("org", 8)))
    check(len(left) == 24, "org 8 untouched")

    # The app reads through the fail-safe view: never an error from Redis.
    fs = cache.fail_safe()
    status, value, _ = fs.lookup("org:8:prj:1:pl:1")
    check(status == "hit" and value["status"] == "green", f"expected a hit, got {status}")
    print(f"org:8:prj:1:pl:1 = {value}")
    cache.invalidate_prefix(("org", 8))
    check(list(cache.paths_under(("org",))) == [], "everything invalidated")
    print("pipeline_metadata: all checks passed")


if __name__ == "__main__":
    main()
