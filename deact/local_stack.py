"""The local stack `make up` starts in the background, and `make down` stops.

Services: the local MongoDB, the collector, a Prefect server (SQLite under DATA_DIR/prefect) and a
Prefect process worker. Each runs in its own process group with its output in DATA_DIR/logs/ and
its PID in DATA_DIR/run/<name>.pid; `make down` signals exactly those process groups (after
checking the PID still runs the command it started, so a reused PID is never signalled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deactivation.settings import Settings

log = logging.getLogger(__name__)

#: Work pool of the deployments (prefect.yaml). Locally a `process` pool; on Google Cloud a pool of
#: the same name and type `cloud-run-v2` (README, "Production on Google Cloud").
WORK_POOL = "deactivation"

#: Measured here: a new Prefect server answers /api/health after 30-35 s.
PREFECT_STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    #: URL that answers 200 once the service is ready (None: ready once started).
    ready_url: str | None = None
    ready_timeout_s: float = 60.0
    #: Signals `down` sends, in order (a Prefect worker ignores a single SIGTERM).
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)


def bin_path(name: str) -> str:
    """A console script of this virtualenv (deact, prefect)."""
    return str(Path(sys.executable).with_name(name))


def prefect_api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.PREFECT_PORT}/api"


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's own variables for the local stack: its home and SQLite database under DATA_DIR."""
    home = settings.prefect_home.resolve()
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(int(PREFECT_STARTUP_TIMEOUT_S)),
        # No telemetry from a self-hosted stack (and none of its DNS errors in the logs).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if answers(url):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before {url} answered")
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


class ProcessRegistry:
    """Background processes by name, with PID files and log files under DATA_DIR."""

    def __init__(self, settings: Settings) -> None:
        self.run_dir = settings.run_dir
        self.logs_dir = settings.logs_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def running_pid(self, service: Service) -> int | None:
        """The recorded PID, if that very process (same start time, so not a reused PID) still runs."""
        try:
            pid_text, started_text = self.pid_file(service.name).read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        return pid if _start_time(pid) == started_text and not _is_zombie(pid) else None

    def start(self, service: Service, cwd: Path) -> subprocess.Popen:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file(service.name), "ab") as output:
            process = subprocess.Popen(
                service.command,
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: `down` signals it and its children
            )
        self.pid_file(service.name).write_text(f"{process.pid} {_start_time(process.pid)}\n")
        return process

    def stop(self, service: Service, timeout_s: float = 30.0) -> bool:
        """Signal the service's process group; True if it was running."""
        pid = self.running_pid(service)
        self.pid_file(service.name).unlink(missing_ok=True)
        if pid is None:
            return False
        deadline = time.monotonic() + timeout_s
        for signum in service.stop_signals:
            _signal_group(pid, signum)
            if _wait_gone(pid, min(5.0, deadline - time.monotonic())):
                return True
        if not _wait_gone(pid, max(0.0, deadline - time.monotonic())):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
        return True


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            finished, _status = os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
            if finished == pid:
                return True
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state is [0], start time is [19])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def _start_time(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    fields = _proc_stat(pid)
    return not fields or fields[0] == "Z"


def local_mongo_port(settings: Settings) -> int | None:
    """The port of MONGODB_URI when it names this machine (the stack then runs it), else None."""
    from pymongo.uri_parser import parse_uri

    (host, port), *_ = parse_uri(settings.MONGODB_URI)["nodelist"]
    return port if host in {"127.0.0.1", "localhost"} else None


def stack_services(settings: Settings) -> list[Service]:
    """The services of the local stack, in start order (`down` stops them in reverse)."""
    deact, prefect = bin_path("deact"), bin_path("prefect")
    mongo_port = local_mongo_port(settings)
    mongo = [Service("mongo", [deact, "mongo", "serve", "--port", str(mongo_port)])] if mongo_port else []
    return [
        *mongo,
        Service(
            "collector",
            [deact, "serve", "--host", "127.0.0.1", "--port", str(settings.PORT)],
            ready_url=f"http://127.0.0.1:{settings.PORT}/healthz",
        ),
        Service(
            "prefect-server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(settings.PREFECT_PORT)],
            ready_url=f"{prefect_api_url(settings)}/health",
            ready_timeout_s=PREFECT_STARTUP_TIMEOUT_S,
            stop_signals=(signal.SIGINT, signal.SIGTERM),
        ),
        Service(
            "prefect-worker",
            [prefect, "worker", "start", "--pool", WORK_POOL, "--type", "process"],
            stop_signals=(signal.SIGINT, signal.SIGTERM, signal.SIGINT),
        ),
    ]


def configure_prefect(settings: Settings) -> str:
    """Point this process's Prefect at `make up`'s server if it runs, else at a temporary server
    on the same database (so its runs show in the UI later). Returns a line saying which.

    Must run before Prefect is imported: Prefect reads these variables once, at import.
    """
    if settings.PREFECT_API_URL:
        return f"Prefect API {settings.PREFECT_API_URL} (PREFECT_API_URL)"
    os.environ.update(prefect_environment(settings))
    api_url = prefect_api_url(settings)
    if answers(f"{api_url}/health"):
        os.environ["PREFECT_API_URL"] = api_url
        return f"runs recorded by the `make up` Prefect server at {api_url.removesuffix('/api')}"
    return (
        f"runs recorded in {settings.prefect_home}/prefect.db by a temporary Prefect server; "
        "`make up` serves that same database in the UI"
    )
