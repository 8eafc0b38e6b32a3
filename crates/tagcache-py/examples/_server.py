"""A private redis-server for the examples when REDIS_URL is not set
(temp dir, unix socket, no persistence; stopped at exit)."""

import atexit
import os
import shutil
import subprocess
import tempfile
import time


def redis_url():
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    tmp = tempfile.mkdtemp(prefix="tagcache-example-")
    sock = os.path.join(tmp, "redis.sock")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
         "--dir", tmp, "--logfile", os.path.join(tmp, "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.01)
    return f"unix://{sock}"
