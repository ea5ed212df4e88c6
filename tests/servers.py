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

from runner.tracking.links import UI_ENVIRONMENT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_mlflow(root: Path, backend: str, workers: int = 1):
    """``mlflow server`` on a free port of 127.0.0.1 with ``backend`` and artifacts under ``root``, as the
    project's docs serve a store (without MLflow's GenAI job runners: ``UI_ENVIRONMENT``); yields its URL;
    stopped with its workers."""
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    with serving([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                  "--backend-store-uri", backend, "--artifacts-destination", str(root / "artifacts")],
                 root, port, env=UI_ENVIRONMENT) as (url, _):
        yield url


@contextlib.contextmanager
def serve_command(command: str, root: Path):
    """A printed UI command run by ``bash`` as a user pastes it (``--port`` added: a free one), in an
    environment without MLFLOW_* variables; yields its URL and its process group's leader."""
    port = free_port()
    with serving(["bash", "-c", f"{command} --port {port}"], root, port, clean=True) as served:
        yield served


@contextlib.contextmanager
def serving(argv: list[str], root: Path, port: int, env: dict | None = None, clean: bool = False):
    """``argv`` started in a process group of its own (``root/server.log``), until ``/health`` on ``port``
    answers; yields ``(url, process)``; then the whole group stopped."""
    root.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not (clean and k.startswith("MLFLOW_"))} | (env or {})
    log = open(root / "server.log", "w")
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=environment,
                              start_new_session=True)  # its own process group: we stop them all
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
            raise RuntimeError(f"{argv[0]} did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield url, server
    finally:
        stop_group(server)
        log.close()


def group_members(pgid: int) -> list[str]:
    listing = subprocess.run(["ps", "-ww", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in listing.splitlines()
            if line.split()[1] == str(pgid) and not line.split()[2].startswith("Z")]


def stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to whatever outlives 30 s; then none is left."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone already (a command that failed)
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
