"""A real `deact serve` (Granian, the async front) in its own process group, for the tests that
need the server itself: slow clients, kill -9, memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deactivation.mongo import free_port

from .conftest import stored_files

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    process: subprocess.Popen
    base_url: str
    port: int
    raw_root: Path
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The Granian worker processes (children of the main process)."""
        pids = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            pids.extend(int(pid) for pid in (task / "children").read_text().split())
        return pids


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def serve(tmp_path: Path, workers: int = 1, **settings: str) -> Iterator[Served]:
    """`deact serve` on a free port with its own raw store and the given settings (env vars)."""
    port = free_port()
    raw_root = tmp_path / "raw"
    environment = {
        **os.environ,
        "RAW_STORE_URL": str(raw_root),
        "INGEST_WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "deact", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, f"http://127.0.0.1:{port}", port, raw_root, log_path)
    try:
        wait_until_ready(served, workers)
        yield served
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (its workers too), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_ready(served: Served, workers: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"deact serve exited: {served.log_path.read_text(errors='replace')[-2000:]}")
        # Every worker up, not just one: Granian ignores a SIGTERM that overtakes a starting worker.
        started = served.log_path.read_text(errors="replace").count("Started worker")
        try:
            with urllib.request.urlopen(f"{served.base_url}/readyz", timeout=1) as response:
                if response.status == 200 and started >= workers:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("deact serve did not become ready")


def stored_envelopes(raw_root: Path, route: str = "deactivate") -> list[dict]:
    """Every envelope in the complete files of a route (each line must parse: none half-written)."""
    return [
        json.loads(line)
        for path in stored_files(raw_root, route)
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]
