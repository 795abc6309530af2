"""`make up` / `make down` bookkeeping: PID files, process groups, and never a stranger's PID."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from deact.local_stack import ProcessRegistry, Service, local_mongo_port, prefect_environment
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
