"""Private redis-server processes for the tests: one per test, in a temp
dir, on a unix socket (no TCP port: the machine's Redis is never touched),
no persistence; killed at teardown. At teardown the server's commandstats
must show no KEYS call."""

import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

import tagcache


class RedisServer:
    def __init__(self, tmp_path, *extra):
        self.dir = tmp_path / f"redis-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        self.socket = str(self.dir / "redis.sock")
        self.extra = list(extra)
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"unix://{self.socket}"

    def start(self):
        args = [
            "redis-server", "--port", "0", "--unixsocket", self.socket,
            "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
            "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
        ] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(self.socket) and self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-s", self.socket, *args],
                             capture_output=True, text=True, timeout=10)
        return out.stdout

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def restart(self):
        self.kill()
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.start()


@pytest.fixture
def redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/ensure-tools installs it)")
    server = RedisServer(tmp_path)
    try:
        yield server
        if server.proc.poll() is None:
            stats = server.cli("INFO", "commandstats")
            assert "cmdstat_keys:" not in stats, "KEYS was called"
    finally:
        server.thaw() if server.proc.poll() is None else None
        server.kill()


@pytest.fixture
def ns():
    return "py" + uuid.uuid4().hex[:10]


@pytest.fixture
def cache(redis, ns):
    return tagcache.Cache(redis.url, namespace=ns)
