"""`make up` / `make down` bookkeeping: PID files, process groups, never a stranger's PID, and never a
stranger's Prefect server."""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from deact.errors import ServiceUnavailable
from deact.local_stack import (
    ProcessRegistry,
    Service,
    configure_prefect,
    local_mongo_port,
    prefect_environment,
    record_prefect_url,
)
from deactivation.settings import Settings

# Ignores SIGTERM like a Prefect worker does, and leaves a child in its process group.
STUBBORN = (
    "import signal, subprocess, sys, time;"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    "time.sleep(600)"
)


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_down_stops_the_whole_process_group_that_up_started(tmp_path: Path):
    registry = ProcessRegistry(Settings(DATA_DIR=tmp_path, _env_file=None))
    service = Service(
        "stubborn", [sys.executable, "-c", STUBBORN], stop_signals=(signal.SIGTERM, signal.SIGINT)
    )

    process = registry.start(service, cwd=tmp_path)
    assert registry.running_pid(service) == process.pid
    assert registry.log_file("stubborn").exists()

    assert registry.stop(service, timeout_s=20)
    assert not _alive(process.pid)
    assert not registry.pid_file("stubborn").exists()
    assert registry.stop(service) is False  # nothing left to stop


def test_a_pid_file_of_another_process_is_never_signalled(tmp_path: Path):
    registry = ProcessRegistry(Settings(DATA_DIR=tmp_path, _env_file=None))
    service = Service("collector", ["deact", "serve"])
    registry.run_dir.mkdir(parents=True)
    # Our own PID with a start time that is not ours: a PID reused since `make up` wrote the file.
    registry.pid_file("collector").write_text(f"{Path('/proc/self').resolve().name} 1\n")

    assert registry.running_pid(service) is None
    assert registry.stop(service) is False


def test_the_stack_keeps_prefect_state_under_data_dir_and_runs_only_a_local_mongodb(tmp_path: Path):
    settings = Settings(DATA_DIR=tmp_path, _env_file=None)
    environment = prefect_environment(settings)
    assert environment["PREFECT_HOME"] == str((tmp_path / "prefect").resolve())
    assert environment["PREFECT_API_DATABASE_CONNECTION_URL"].endswith(f"{tmp_path}/prefect/prefect.db")
    assert local_mongo_port(settings) == 27018
    remote = Settings(MONGODB_URI="mongodb://db.example.net:27017/", _env_file=None)
    assert local_mongo_port(remote) is None


# --- which Prefect server a command uses -------------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def stranger_on_a_port():
    """Something answering /api/health on a port: another checkout's Prefect server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def clean_prefect_environment(monkeypatch):
    """configure_prefect sets os.environ: every variable it may set is restored after the test."""
    for name in (
        "PREFECT_API_URL",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
        *prefect_environment(Settings(_env_file=None)),
    ):
        monkeypatch.setenv(name, "")  # recorded, so the teardown restores the original (or unset)
        monkeypatch.delenv(name)
    return monkeypatch


def test_a_stranger_on_the_prefect_port_is_never_used(
    tmp_path, stranger_on_a_port, clean_prefect_environment
):
    settings = Settings(DATA_DIR=tmp_path, PREFECT_PORT=stranger_on_a_port, _env_file=None)
    note = configure_prefect(settings)
    assert "temporary Prefect server" in note
    assert "PREFECT_API_URL" not in os.environ
    assert os.environ["PREFECT_HOME"] == str((tmp_path / "prefect").resolve())


def test_this_checkouts_server_is_found_through_its_pid_file(
    tmp_path, stranger_on_a_port, clean_prefect_environment
):
    settings = Settings(DATA_DIR=tmp_path, PREFECT_PORT=stranger_on_a_port, _env_file=None)
    registry = ProcessRegistry(settings)
    # Stands in for `make up`'s Prefect server process; the stranger's port plays its API.
    service = Service("prefect-server", [sys.executable, "-c", "import time; time.sleep(60)"])
    registry.start(service, cwd=tmp_path)
    try:
        record_prefect_url(settings)
        note = configure_prefect(settings)
        assert note.startswith("runs recorded by the `make up` Prefect server")
        assert os.environ["PREFECT_API_URL"] == f"http://127.0.0.1:{stranger_on_a_port}/api"
    finally:
        registry.stop(service)


def test_an_explicit_prefect_api_url_that_does_not_answer_is_an_error(tmp_path, clean_prefect_environment):
    settings = Settings(DATA_DIR=tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api", _env_file=None)
    with pytest.raises(
        ServiceUnavailable, match=r"the Prefect API at http://127.0.0.1:9/api \(PREFECT_API_URL\)"
    ):
        configure_prefect(settings)
