"""The Python examples run against a private server and check themselves."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["pipeline_metadata.py", "privacy_requests.py"])
def test_example(name, redis):
    if name == "privacy_requests.py":
        pytest.importorskip("redis")
    env = dict(os.environ, REDIS_URL=redis.url)
    out = subprocess.run([sys.executable, str(EXAMPLES / name)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout


def test_bench_runs(redis):
    pytest.importorskip("redis")
    env = dict(os.environ, REDIS_URL=redis.url)
    out = subprocess.run([sys.executable, str(EXAMPLES.parent / "bench" / "bench.py"),
                          "--n", "50", "--rounds", "1"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "| set, 1 tag |" in out.stdout
