"""Real servers for the tests: ``mlflow server`` on 127.0.0.1, stopped with all its processes."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_mlflow(root: Path, backend: str, workers: int = 1):
    """``mlflow server`` on a free port of 127.0.0.1 with ``backend`` and artifacts under ``root``;
    yields its URL; stopped with its workers."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    mlflow = Path(sys.executable).parent / "mlflow"
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--backend-store-uri", backend, "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own process group: we stop them all
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_group(server)
            raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield url
    finally:
        stop_group(server)
        log.close()


def group_members(pgid: int) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in listing.splitlines()
            if line.split()[1] == str(pgid) and not line.split()[2].startswith("Z")]


def stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to whatever outlives 30 s; then none is left."""
    os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while group_members(server.pid) and time.monotonic() < deadline:
        server.poll()
        time.sleep(0.2)
    if group_members(server.pid):
        os.killpg(server.pid, signal.SIGKILL)
        time.sleep(1)
    server.wait(timeout=10)
    assert group_members(server.pid) == [], "mlflow server processes outlived the test"
